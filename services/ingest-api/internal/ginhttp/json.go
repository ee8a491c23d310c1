package ginhttp

import (
	"time"

	"github.com/photopipe/photopipe/services/ingest-api/internal/app"
)

type photoJSON struct {
	UUID        string          `json:"uuid"`
	URL         *string         `json:"url"` // null for an upload
	Status      string          `json:"status"`
	CreatedAt   time.Time       `json:"created_at"`
	UpdatedAt   time.Time       `json:"updated_at"`
	Attempt     int             `json:"attempt"`
	Renditions  []string        `json:"renditions"`
	Filename    string          `json:"filename,omitempty"`
	CompletedAt *time.Time      `json:"completed_at,omitempty"`
	Failure     *failureJSON    `json:"failure"`
	DeadLetter  *deadLetterJSON `json:"dead_letter"`
	FailureCode *string         `json:"failure_code"`
	Original    *originalJSON   `json:"original"`
	Thumbnails  []thumbnailJSON `json:"thumbnails"`
	Callback    *callbackJSON   `json:"callback,omitempty"`
}

// deadLetterJSON is set while the photo waits in a dead-letter queue.
type deadLetterJSON struct {
	Service string    `json:"service"`
	Queue   string    `json:"queue"`
	Reason  string    `json:"reason"`
	Since   time.Time `json:"since"`
}

type failureJSON struct {
	Stage     string `json:"stage"`
	Code      string `json:"code"`
	Message   string `json:"message"`
	Retryable bool   `json:"retryable"`
}

type originalJSON struct {
	Path        string `json:"path"`
	FileURL     string `json:"file_url"`
	ContentType string `json:"content_type"`
	Bytes       int64  `json:"bytes"`
	// null until the resizer has read the original
	Width  *int `json:"width"`
	Height *int `json:"height"`
	Pages  *int `json:"pages"`
}

// known is n, or nil (JSON null) for 0: not known yet.
func known(n int) *int {
	if n == 0 {
		return nil
	}
	return &n
}

type thumbnailJSON struct {
	Rendition string `json:"rendition"`
	Page      int    `json:"page"`
	URL       string `json:"url"`
	FileURL   string `json:"file_url"`
	Width     int    `json:"width"`
	Height    int    `json:"height"`
	Format    string `json:"format"`
	Bytes     int64  `json:"bytes"`
}

// fileURL is where GET /files serves a storage key.
func fileURL(key string) string { return "/files/" + key }

func toJSON(p app.Photo) photoJSON {
	out := photoJSON{
		UUID: p.UUID, Status: p.Status, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt,
		Attempt: p.Attempt, Renditions: p.Renditions, Filename: p.Filename, CompletedAt: p.CompletedAt,
		Thumbnails: []thumbnailJSON{}, Callback: toCallbackJSON(p.Callback),
	}
	if p.URL != "" {
		out.URL = &p.URL
	}
	if p.Failure != nil {
		out.Failure = &failureJSON{Stage: p.Failure.Stage, Code: p.Failure.Code, Message: p.Failure.Message, Retryable: p.Failure.Retryable}
		out.FailureCode = &p.Failure.Code
	}
	if d := p.DeadLetter; d != nil {
		out.DeadLetter = &deadLetterJSON{Service: d.Service, Queue: d.Queue, Reason: d.Reason, Since: d.Since}
	}
	if o := p.Original; o != nil {
		out.Original = &originalJSON{
			Path: o.Key, FileURL: fileURL(o.Key), ContentType: o.ContentType, Bytes: o.Bytes,
			Width: known(o.Width), Height: known(o.Height), Pages: known(o.Pages),
		}
	}
	for _, t := range p.Thumbnails {
		out.Thumbnails = append(out.Thumbnails, thumbnailJSON{
			Rendition: t.Rendition, Page: t.Page, URL: t.Key, FileURL: fileURL(t.Key),
			Width: t.Width, Height: t.Height, Format: t.Format, Bytes: t.Bytes,
		})
	}
	return out
}

type processResultJSON struct {
	UUID    string `json:"uuid"`
	Outcome string `json:"outcome"`
	Attempt int    `json:"attempt,omitempty"`
}
