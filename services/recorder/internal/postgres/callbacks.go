package postgres

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/photopipe/photopipe/services/recorder/internal/app"
	"github.com/photopipe/photopipe/shared/database"
)

// CallbackStore implements app.CallbackStore on the callbacks and
// callback_attempts tables. Replicas share them: claims skip rows another
// replica holds (FOR UPDATE SKIP LOCKED) and lease them, so a callback is
// never sent by two at once, and is due again if its replica dies.
type CallbackStore struct {
	db *gorm.DB
}

var _ app.CallbackStore = (*CallbackStore)(nil)

// NewCallbackStore returns a CallbackStore over db.
func NewCallbackStore(db *gorm.DB) *CallbackStore {
	return &CallbackStore{db: db}
}

// Claim leases up to limit due callbacks, oldest due first, and counts the
// try each is about to get.
func (s *CallbackStore) Claim(ctx context.Context, limit int, lease time.Duration) ([]app.Delivery, error) {
	var rows []struct {
		ID       string
		URL      string
		Payload  []byte
		Attempts int
	}
	err := database.Scan(s.db.WithContext(ctx).Raw(`UPDATE callbacks c
		SET attempts = c.attempts + 1, locked_until = now() + make_interval(secs => @lease), updated_at = now()
		FROM (SELECT id FROM callbacks
		      WHERE status = 'pending' AND next_attempt_at <= now()
		        AND (locked_until IS NULL OR locked_until <= now())
		      ORDER BY next_attempt_at LIMIT @limit
		      FOR UPDATE SKIP LOCKED) due
		WHERE c.id = due.id
		RETURNING c.id, c.url, c.payload, c.attempts`,
		map[string]any{"lease": lease.Seconds(), "limit": limit}), &rows).Error
	if err != nil {
		return nil, fmt.Errorf("claim callbacks: %w", err)
	}
	out := make([]app.Delivery, len(rows))
	for i, r := range rows {
		out[i] = app.Delivery{ID: r.ID, URL: r.URL, Payload: r.Payload, Attempt: r.Attempts}
	}
	return out, nil
}

// Release gives back the claim of try attempt, not tried after all: the
// callback is due at once again, and its next claim is that try again.
// A claim already lost (another replica claimed it after the lease ran
// out) changes nothing.
func (s *CallbackStore) Release(ctx context.Context, callbackID string, attempt int) error {
	if err := s.db.WithContext(ctx).Exec(`UPDATE callbacks
		SET attempts = attempts - 1, locked_until = NULL, next_attempt_at = now(), updated_at = now()
		WHERE id = @id AND attempts = @attempt AND status = 'pending'`,
		map[string]any{"id": callbackID, "attempt": attempt}).Error; err != nil {
		return fmt.Errorf("release callback: %w", err)
	}
	return nil
}

// Record stores one try and the callback's new status, and releases the
// claim. A try of a claim that was lost (the lease ran out and another
// replica tried again) is kept but changes nothing else.
func (s *CallbackStore) Record(ctx context.Context, r app.AttemptResult) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		a := database.CallbackAttempt{
			CallbackID: r.CallbackID, Attempt: r.Attempt, StartedAt: r.StartedAt.UTC(),
			DurationMS: r.Duration.Milliseconds(),
		}
		if r.StatusCode != 0 {
			a.StatusCode = &r.StatusCode
		}
		if r.Error != "" {
			a.Error = &r.Error
		}
		if err := tx.Exec(`INSERT INTO callback_attempts (callback_id, attempt, started_at, duration_ms, status_code, error)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			a.CallbackID, a.Attempt, a.StartedAt, a.DurationMS, a.StatusCode, a.Error).Error; err != nil {
			return fmt.Errorf("record callback attempt: %w", err)
		}
		var lastErr *string
		if r.Error != "" {
			lastErr = &r.Error
		}
		if err := tx.Exec(`UPDATE callbacks
			SET status = CAST(@status AS text), last_error = CAST(@error AS text), locked_until = NULL, updated_at = now(),
			    next_attempt_at = now() + make_interval(secs => @retry),
			    finished_at = CASE WHEN CAST(@status AS text) = 'pending' THEN NULL ELSE now() END
			WHERE id = @id AND attempts = @attempt AND status = 'pending'`,
			map[string]any{
				"id": r.CallbackID, "attempt": r.Attempt, "status": string(r.Status), "error": lastErr,
				"retry": r.RetryIn.Seconds(),
			}).Error; err != nil {
			return fmt.Errorf("update callback: %w", err)
		}
		return nil
	})
}
