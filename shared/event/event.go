// Package event declares the messages that photopipe's services exchange.
// Each event is one Go type whose name is its topic (see Topic); payloads
// are versioned JSON and carry storage keys, never image bytes.
package event

import (
	"time"

	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/google/uuid"
)

// SchemaVersion is the version of the JSON shapes in this package. A
// consumer accepts every version up to its own; fields are only ever added.
const SchemaVersion = 1

// Header is embedded in every event. Attempt counts explicit processing
// requests of a photo (1 for the first), so that events of an older attempt
// can never overwrite the state of a newer one.
type Header struct {
	Version    int       `json:"version"`
	EventID    string    `json:"event_id"`
	PhotoID    string    `json:"photo_id"`
	Attempt    int       `json:"attempt"`
	OccurredAt time.Time `json:"occurred_at"`
}

// NewHeader returns a Header for photoID and attempt with a fresh event id.
func NewHeader(photoID string, attempt int) Header {
	return Header{
		Version:    SchemaVersion,
		EventID:    uuid.NewString(),
		PhotoID:    photoID,
		Attempt:    attempt,
		OccurredAt: time.Now().UTC(),
	}
}

// Head returns the header; every event type has it through embedding.
func (h Header) Head() Header { return h }

// Event is implemented by every event type of this package.
type Event interface {
	Head() Header
}

// PhotoRequested asks for a photo to be processed. It is published by
// ingest-api (through its outbox) and consumed by the downloader, which
// fetches URL, or, when OriginalKey is set (uploads), checks the stored file.
type PhotoRequested struct {
	Header
	URL         string   `json:"url,omitempty"`
	OriginalKey string   `json:"original_key,omitempty"`
	Filename    string   `json:"filename,omitempty"`
	Renditions  []string `json:"renditions"`
}

// PhotoDownloaded says the original is stored under OriginalKey. Width and
// Height come from the image header (zero when the format has none, like PDF).
// Only the resizer consumes it; the resizer passes the original's details on
// in ThumbnailCreated or PhotoFailed.
type PhotoDownloaded struct {
	Header
	OriginalKey string   `json:"original_key"`
	Filename    string   `json:"filename"`
	ContentType string   `json:"content_type"`
	Bytes       int64    `json:"bytes"`
	Width       int      `json:"width"`
	Height      int      `json:"height"`
	Renditions  []string `json:"renditions"`
}

// Rendition describes one stored output file.
type Rendition struct {
	Name   string `json:"name"`
	Page   int    `json:"page"`
	Key    string `json:"key"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
	Format string `json:"format"`
	Bytes  int64  `json:"bytes"`
}

// ThumbnailCreated says every requested rendition of the photo is stored.
// Pages is the number of pages of the original (1 for a plain image).
type ThumbnailCreated struct {
	Header
	Width      int         `json:"width"`
	Height     int         `json:"height"`
	Pages      int         `json:"pages"`
	Renditions []Rendition `json:"renditions"`
	// The original, as in PhotoDownloaded: the recorder learns it from here
	// (it does not consume PhotoDownloaded).
	OriginalKey string `json:"original_key,omitempty"`
	Filename    string `json:"filename,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	Bytes       int64  `json:"bytes,omitempty"`
}

// Stages at which a photo can fail.
const (
	StageDownload = "download"
	StageResize   = "resize"
	StageRecord   = "record" // only for CodeDiscarded: the recorder's dead letter was discarded
)

// Stable failure codes. Clients match on these, so they never change.
const (
	CodeDownloadHTTPStatus = "download_http_status"
	CodeDownloadTimeout    = "download_timeout"
	CodeDownloadError      = "download_error"
	CodeInvalidURL         = "invalid_url"
	CodeTooLarge           = "too_large"
	CodeUnsupportedFormat  = "unsupported_format"
	CodeDecodeError        = "decode_error"
	CodePixelLimit         = "pixel_limit"
	CodeBlockedAddress     = "blocked_address"
	CodeUnknownRendition   = "unknown_rendition"
	CodePageLimit          = "page_limit" // a PDF with more pages than the resizer's PDF_MAX_PAGES
	// An operator discarded the dead letter the attempt waited for
	// (ingest-api's /admin/dead-letters/{service}/discard).
	CodeDiscarded = "discarded"
)

// PhotoFailed says processing of the photo stopped for good at Stage.
// Retryable tells whether a new attempt could succeed (the source host was
// down) or not (the input is bad).
type PhotoFailed struct {
	Header
	Stage     string `json:"stage"`
	Code      string `json:"code"`
	Message   string `json:"message"`
	Retryable bool   `json:"retryable"`
	// The stored original, when the photo failed after its download (the
	// resizer's failures): the recorder keeps it so that the file that
	// failed can be fetched.
	OriginalKey string `json:"original_key,omitempty"`
	Filename    string `json:"filename,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	Bytes       int64  `json:"bytes,omitempty"`
	Width       int    `json:"width,omitempty"`
	Height      int    `json:"height,omitempty"`
}

// Topic returns the topic an event is published on: its type name.
func Topic(e any) string {
	return cqrs.StructName(e)
}

// Topics of the events, derived from their types.
var (
	TopicPhotoRequested   = Topic(&PhotoRequested{})
	TopicPhotoDownloaded  = Topic(&PhotoDownloaded{})
	TopicThumbnailCreated = Topic(&ThumbnailCreated{})
	TopicPhotoFailed      = Topic(&PhotoFailed{})
)

// PhotoDeadLettered says a message about the photo was moved to Service's
// dead-letter queue (a dependency kept failing, or the message crashed its
// worker): the photo waits there until an operator replays or discards it.
type PhotoDeadLettered struct {
	Header
	Service string `json:"service"`
	Queue   string `json:"queue"`
	Topic   string `json:"topic"`
	Reason  string `json:"reason"`
}

// TopicPhotoDeadLettered is the topic of PhotoDeadLettered.
var TopicPhotoDeadLettered = Topic(&PhotoDeadLettered{})
