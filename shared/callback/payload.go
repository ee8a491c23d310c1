package callback

import "time"

// Payload types: the "type" field of every callback body.
const (
	TypePhoto = "photo"
	TypeJob   = "job"
)

// Photo is the body sent when an attempt of a photo ends: its results
// when completed, its errors when failed.
type Photo struct {
	Type       string      `json:"type"` // "photo"
	ID         string      `json:"id"`
	Status     string      `json:"status"` // "completed" or "failed"
	Attempt    int         `json:"attempt"`
	URL        string      `json:"url,omitempty"`
	FinishedAt time.Time   `json:"finished_at"`
	Original   *Original   `json:"original,omitempty"`
	Results    []Rendition `json:"results,omitempty"`
	Errors     []Error     `json:"errors,omitempty"`
}

// Original is the stored original of a photo.
type Original struct {
	Path        string `json:"path"`
	FileURL     string `json:"file_url"`
	ContentType string `json:"content_type,omitempty"`
	Bytes       int64  `json:"bytes,omitempty"`
	Width       int    `json:"width,omitempty"`
	Height      int    `json:"height,omitempty"`
	Pages       int    `json:"pages,omitempty"`
}

// Rendition is one stored rendition (of one page) of a completed photo.
type Rendition struct {
	Rendition string `json:"rendition"`
	Page      int    `json:"page"`
	Path      string `json:"path"`
	FileURL   string `json:"file_url"`
	Width     int    `json:"width"`
	Height    int    `json:"height"`
	Format    string `json:"format"`
	Bytes     int64  `json:"bytes"`
}

// Error says why a photo failed.
type Error struct {
	Stage     string `json:"stage,omitempty"`
	Code      string `json:"code"`
	Message   string `json:"message"`
	Retryable bool   `json:"retryable"`
}

// Job is the body sent when a batch job ends: its counts, and the groups
// that failed with their first error. Per-photo results are paginated by
// GET /jobs/{id}.
type Job struct {
	Type       string         `json:"type"` // "job"
	ID         string         `json:"id"`
	Kind       string         `json:"kind"`   // "native" or "retailpulse"
	Status     string         `json:"status"` // "completed" or "failed"
	FinishedAt time.Time      `json:"finished_at"`
	Total      int            `json:"total"`
	Counts     map[string]int `json:"counts"` // completed, failed, skipped
	Groups     map[string]int `json:"groups"` // total, failed
	Errors     []GroupError   `json:"errors"`
}

// GroupError is a job group (a store) that stopped at its first failure.
type GroupError struct {
	Group   string `json:"group"`
	Error   string `json:"error"`
	PhotoID string `json:"photo_id,omitempty"`
}

// fileURL is where ingest-api's GET /files serves a storage key.
func fileURL(key string) string { return "/files/" + key }
