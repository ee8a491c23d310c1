// Package postgres is ingest-api's Repository: photos and the outbox
// events that request their processing, written in one transaction.
package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/photopipe/photopipe/services/ingest-api/internal/app"
	"github.com/photopipe/photopipe/shared/database"
	"github.com/photopipe/photopipe/shared/event"
	"github.com/photopipe/photopipe/shared/groupcommit"
	"github.com/photopipe/photopipe/shared/outbox"
)

// Repository implements app.Repository.
type Repository struct {
	db      *gorm.DB
	notify  func()
	batches *groupcommit.Queue[*processCall] // of POST /photos/process
}

var _ app.Repository = (*Repository)(nil)

// New returns a Repository; notify is called after a transaction that wrote
// outbox events has committed.
func New(db *gorm.DB, notify func()) *Repository {
	r := &Repository{db: db, notify: notify}
	r.batches = r.newProcessBatches()
	return r
}

// Create inserts the photos and, when process is set, their first
// PhotoRequested events, the photos already processing attempt 1 (the
// recorder no longer marks a photo processing when its request comes).
func (r *Repository) Create(ctx context.Context, photos []app.NewPhoto, process bool, correlationID string) ([]app.Photo, error) {
	// Postgres keeps microseconds: set the times here so that the answer
	// shows what is stored (gorm's NowFunc has nanoseconds).
	now := time.Now().UTC().Truncate(time.Microsecond)
	rows := make([]database.Photo, len(photos))
	for i, p := range photos {
		rows[i] = database.Photo{URL: p.URL, Status: database.StatusPending, Renditions: p.Renditions, CreatedAt: now, UpdatedAt: now}
		if p.CallbackURL != "" {
			rows[i].CallbackURL = &p.CallbackURL
		}
		if process {
			startFirstAttempt(&rows[i])
		}
	}
	err := r.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.CreateInBatches(&rows, 500).Error; err != nil {
			return fmt.Errorf("insert photos: %w", err)
		}
		if !process {
			return nil
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
	if process {
		r.notify()
	}
	out := make([]app.Photo, len(rows))
	for i, p := range rows {
		out[i] = toApp(p)
	}
	return out, nil
}

// startFirstAttempt sets a new photo row as it is written with its first
// PhotoRequested: processing attempt 1 (what the recorder did when the
// request reached it). New rows have no failure or dead letter to clear.
func startFirstAttempt(p *database.Photo) {
	p.Attempt, p.StatusAttempt, p.Status = 1, 1, database.StatusProcessing
}

func requested(p database.Photo) *event.PhotoRequested {
	e := &event.PhotoRequested{
		Header:     event.NewHeader(p.UUID, p.Attempt),
		URL:        p.URL,
		Filename:   p.Filename,
		Renditions: p.Renditions,
	}
	if p.OriginalKey != nil && p.URL == "" {
		e.OriginalKey = *p.OriginalKey
	}
	return e
}

// ListPending returns pending photos oldest first, after the cursor: those
// whose processing was never requested (a request moves a photo to
// processing in the statement that writes it) and that a client may
// request: not the photos of jobs, which their groups request in turn.
func (r *Repository) ListPending(ctx context.Context, after string, limit int) ([]app.Photo, error) {
	q := r.db.WithContext(ctx).Where("status = ? AND job_uuid IS NULL", database.StatusPending)
	if after != "" {
		q = q.Where("(created_at, uuid) > (SELECT created_at, uuid FROM photos WHERE uuid = ?)", after)
	}
	var rows []database.Photo
	if err := q.Order("created_at, uuid").Limit(limit).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list pending photos: %w", err)
	}
	out := make([]app.Photo, len(rows))
	for i, p := range rows {
		out[i] = toApp(p)
	}
	return out, nil
}

// Get returns a photo with its renditions.
func (r *Repository) Get(ctx context.Context, id string) (app.Photo, error) {
	// One round trip: the photo with its renditions aggregated as JSON
	// (GET /photos/{id} is the API's most frequent request).
	var row struct {
		database.Photo `gorm:"embedded"`
		ThumbnailsJSON []byte `gorm:"column:thumbnails_json"`
	}
	res := database.Scan(r.db.WithContext(ctx).Raw(`SELECT p.*,
		    (SELECT json_agg(json_build_object('rendition', t.rendition, 'page', t.page, 'width', t.width,
		        'height', t.height, 'url', t.url, 'format', t.format, 'bytes', t.bytes) ORDER BY t.rendition, t.page)
		     FROM photo_thumbnails t WHERE t.photo_uuid = p.uuid) AS thumbnails_json
		FROM photos p WHERE p.uuid = ?`, id), &row)
	if res.Error != nil {
		return app.Photo{}, fmt.Errorf("get photo %s: %w", id, res.Error)
	}
	if res.RowsAffected == 0 {
		return app.Photo{}, fmt.Errorf("photo %s: %w", id, app.ErrNotFound)
	}
	p := row.Photo
	if len(row.ThumbnailsJSON) > 0 {
		var ts []struct {
			Rendition, URL, Format string
			Page, Width, Height    int
			Bytes                  int64
		}
		if err := json.Unmarshal(row.ThumbnailsJSON, &ts); err != nil {
			return app.Photo{}, fmt.Errorf("get photo %s: renditions: %w", id, err)
		}
		p.Thumbnails = make([]database.Thumbnail, len(ts))
		for i, t := range ts {
			p.Thumbnails[i] = database.Thumbnail{PhotoUUID: p.UUID, Rendition: t.Rendition, Page: t.Page,
				Width: t.Width, Height: t.Height, URL: t.URL, Format: t.Format, Bytes: t.Bytes}
		}
	}
	out := toApp(p)
	if p.CallbackURL != nil {
		var err error
		final := (p.Status == database.StatusCompleted || p.Status == database.StatusFailed) && p.StatusAttempt == p.Attempt
		out.Callback, err = loadCallback(r.db.WithContext(ctx), database.CallbackKindPhoto, p.UUID, p.Attempt, final, *p.CallbackURL)
		if err != nil {
			return app.Photo{}, fmt.Errorf("get photo %s: %w", id, err)
		}
	}
	return out, nil
}

func toApp(p database.Photo) app.Photo {
	out := app.Photo{
		UUID: p.UUID, URL: p.URL, Status: string(p.Status), CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt,
		Attempt: p.Attempt, Renditions: p.Renditions, Filename: p.Filename, CompletedAt: p.CompletedAt,
	}
	if p.OriginalKey != nil {
		out.Original = &app.Original{
			Key: *p.OriginalKey, ContentType: deref(p.ContentType), Bytes: deref(p.Bytes),
			Width: deref(p.Width), Height: deref(p.Height), Pages: deref(p.Pages),
		}
	}
	if p.FailureCode != nil {
		out.Failure = &app.Failure{
			Stage: deref(p.FailureStage), Code: *p.FailureCode, Message: deref(p.FailureMessage),
			Retryable: deref(p.FailureRetryable),
		}
	}
	if p.CallbackURL != nil {
		out.Callback = &app.Callback{URL: *p.CallbackURL, Status: app.CallbackWaiting, Attempts: []app.CallbackAttempt{}}
	}
	if p.DeadLetterService != nil {
		out.DeadLetter = &app.DeadLetter{
			Service: *p.DeadLetterService, Queue: deref(p.DeadLetterQueue),
			Reason: deref(p.DeadLetterReason), Since: deref(p.DeadLetteredAt),
		}
	}
	for _, t := range p.Thumbnails {
		out.Thumbnails = append(out.Thumbnails, app.Thumbnail{
			Rendition: t.Rendition, Page: t.Page, Key: t.URL, Width: t.Width, Height: t.Height,
			Format: t.Format, Bytes: t.Bytes,
		})
	}
	return out
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
