package ginhttp

import (
	"time"

	"github.com/photopipe/photopipe/services/ingest-api/internal/app"
)

// callbackJSON shows where a photo's or job's callback stands: waiting
// (not finished yet), pending (being delivered; next_attempt_at),
// delivered or failed, with every try.
type callbackJSON struct {
	URL           string                `json:"url"`
	Status        string                `json:"status"`
	NextAttemptAt *time.Time            `json:"next_attempt_at,omitempty"`
	LastError     string                `json:"last_error,omitempty"`
	Attempts      []callbackAttemptJSON `json:"attempts"`
}

type callbackAttemptJSON struct {
	Attempt    int       `json:"attempt"`
	At         time.Time `json:"at"`
	StatusCode int       `json:"status_code,omitempty"`
	Error      string    `json:"error,omitempty"`
	DurationMS int64     `json:"duration_ms"`
}

func toCallbackJSON(cb *app.Callback) *callbackJSON {
	if cb == nil {
		return nil
	}
	out := &callbackJSON{
		URL: cb.URL, Status: cb.Status, NextAttemptAt: cb.NextAttemptAt, LastError: cb.LastError,
		Attempts: make([]callbackAttemptJSON, 0, len(cb.Attempts)),
	}
	for _, a := range cb.Attempts {
		out.Attempts = append(out.Attempts, callbackAttemptJSON{
			Attempt: a.Attempt, At: a.At, StatusCode: a.StatusCode, Error: a.Error, DurationMS: a.DurationMS,
		})
	}
	return out
}
