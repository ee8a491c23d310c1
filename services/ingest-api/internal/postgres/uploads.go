package postgres

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/photopipe/photopipe/services/ingest-api/internal/app"
	"github.com/photopipe/photopipe/shared/database"
	"github.com/photopipe/photopipe/shared/event"
	"github.com/photopipe/photopipe/shared/outbox"
)

var _ app.UploadRepository = (*Repository)(nil)

// CreateUploads inserts one photo per stored upload, with its original
// already known, and its first PhotoRequested (carrying the original's
// key instead of a URL), in one transaction: the photos are processing
// attempt 1 from the start.
func (r *Repository) CreateUploads(ctx context.Context, uploads []app.NewUpload, correlationID string) ([]app.Photo, error) {
	now := time.Now().UTC().Truncate(time.Microsecond)
	rows := make([]database.Photo, len(uploads))
	for i, u := range uploads {
		rows[i] = database.Photo{
			UUID: u.UUID, Renditions: u.Renditions,
			Filename: u.Filename, OriginalKey: &u.Key, ContentType: &u.ContentType, Bytes: &u.Bytes,
			CreatedAt: now, UpdatedAt: now,
		}
		startFirstAttempt(&rows[i])
		if u.CallbackURL != "" {
			rows[i].CallbackURL = &u.CallbackURL
		}
	}
	err := r.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.CreateInBatches(&rows, 500).Error; err != nil {
			return fmt.Errorf("insert uploaded photos: %w", err)
		}
		events := make([]event.Event, len(rows))
		for i, p := range rows {
			events[i] = requested(p)
		}
		return outbox.Add(tx, correlationID, events...)
	})
	if err != nil {
		return nil, err
	}
	r.notify()
	out := make([]app.Photo, len(rows))
	for i, p := range rows {
		out[i] = toApp(p)
	}
	return out, nil
}
