package postgres

import (
	"errors"
	"fmt"

	"gorm.io/gorm"

	"github.com/photopipe/photopipe/services/ingest-api/internal/app"
	"github.com/photopipe/photopipe/shared/database"
)

// loadCallback returns where the callback of a photo attempt or a job
// stands: waiting until the recorder has queued it, then its status and
// every try the recorder's dispatcher made.
func loadCallback(db *gorm.DB, kind, subject string, attempt int, final bool, url string) (*app.Callback, error) {
	out := &app.Callback{URL: url, Status: app.CallbackWaiting, Attempts: []app.CallbackAttempt{}}
	var cb database.Callback
	err := db.Where("kind = ? AND subject_id = ? AND subject_attempt = ?", kind, subject, attempt).Take(&cb).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		// The recorder queues the callback in the transaction that makes
		// the subject final: a final subject without one had it purged
		// (CALLBACK_RETENTION).
		if final {
			out.Status = app.CallbackExpired
		}
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read callback: %w", err)
	}
	out.URL, out.Status, out.LastError = cb.URL, string(cb.Status), deref(cb.LastError)
	if cb.Status == database.CallbackPending {
		next := cb.NextAttemptAt
		out.NextAttemptAt = &next
	}
	var tries []database.CallbackAttempt
	if err := db.Where("callback_id = ?", cb.ID).Order("attempt").Find(&tries).Error; err != nil {
		return nil, fmt.Errorf("read callback attempts: %w", err)
	}
	for _, a := range tries {
		out.Attempts = append(out.Attempts, app.CallbackAttempt{
			Attempt: a.Attempt, At: a.StartedAt, StatusCode: deref(a.StatusCode), Error: deref(a.Error),
			DurationMS: a.DurationMS,
		})
	}
	return out, nil
}
