// Package postgres is the recorder's Repository on Postgres: conditional
// updates that only ever move a photo forward, so duplicate and
// out-of-order deliveries change nothing.
package postgres

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/photopipe/photopipe/services/recorder/internal/app"
	"github.com/photopipe/photopipe/shared/callback"
	"github.com/photopipe/photopipe/shared/database"
	"github.com/photopipe/photopipe/shared/event"
)

// Repository implements app.Repository.
type Repository struct {
	db         *gorm.DB
	notify     func()
	onCallback func()
	batch      *batcher

	// The kind of events applied many in one statement.
	completion *opKind
}

var _ app.Repository = (*Repository)(nil)

// DefaultBatch is how many events one transaction applies at most.
const DefaultBatch = 128

// Option changes a Repository's defaults.
type Option func(*Repository)

// WithBatch sets how many events one transaction applies at most (at
// least 1; 1 is a transaction per event).
func WithBatch(n int) Option {
	return func(r *Repository) { r.batch.q.Max = max(n, 1) }
}

// WithStop cancels the transaction in progress when stop ends, however
// long the batch had left (worker.WorkContext: a stopping recorder whose
// database hangs exits instead of waiting for it; the events go back to
// their queue).
func WithStop(stop context.Context) Option {
	return func(r *Repository) { r.batch.q.Stop = stop }
}

// WithLog logs the batches whose transaction failed (their events are
// then applied one by one, each error going to its own event).
func WithLog(log *slog.Logger) Option {
	return func(r *Repository) { r.batch.log = log }
}

// New returns a Repository over db; notify is called after a transaction
// that wrote outbox events (the next photo of a job's group) committed,
// onCallback after one that queued a callback.
//
// Events handled at once are applied in one transaction (group commit,
// see batcher); each method returns once its event's change is committed.
func New(db *gorm.DB, notify, onCallback func(), opts ...Option) *Repository {
	r := &Repository{
		db: db, notify: notify, onCallback: onCallback, batch: newBatcher(db, DefaultBatch),
		completion: &opKind{runMany: completeMany},
	}
	for _, o := range opts {
		o(r)
	}
	return r
}

// final is what applying an event did, and left to do after the commit.
type final struct {
	applied   bool // the event moved the photo forward
	requested bool // an outbox event was written (the next photo of a group)
	callbacks bool // a callback was queued
}

// apply runs the change of one event on photo in a batch transaction
// (run, or kind's statement for many events, when kind is not nil) and,
// once committed, wakes the outbox relay and the callback dispatcher if
// it gave them work.
func (r *Repository) apply(ctx context.Context, photo string, kind *opKind, ev any, run func(tx *gorm.DB) (final, error)) (bool, error) {
	// A batch knows its photos by Postgres's spelling of their uuids (what
	// its statements return); one that is not a uuid is applied alone, so
	// that Postgres's refusal fails its own event only.
	if u, err := uuid.Parse(photo); err == nil {
		photo = u.String()
	} else {
		kind = nil
	}
	f, err := r.batch.do(ctx, &op{photo: photo, run: run, kind: kind, ev: ev, ctx: ctx})
	if err != nil {
		return false, err
	}
	if f.requested {
		r.notify()
	}
	if f.callbacks {
		r.onCallback()
	}
	return f.applied, nil
}

// enqueue queues the callbacks the photo's final state calls for: the
// photo's own (when it has a callback URL) and its job's (when the job
// just finished).
func enqueue(tx *gorm.DB, photoID string, photoCallback bool, job string, f *final) error {
	if photoCallback {
		ok, err := callback.EnqueuePhoto(tx, photoID)
		if err != nil {
			return err
		}
		f.callbacks = f.callbacks || ok
	}
	if job != "" {
		ok, err := callback.EnqueueJob(tx, job)
		if err != nil {
			return err
		}
		f.callbacks = f.callbacks || ok
	}
	return nil
}

// finalRow is what the update that makes a photo final returns.
type finalRow struct {
	UUID        string // when returned (by the update of many photos)
	CallbackURL *string
	JobUUID     *string
	GroupKey    *string
	GroupSeq    *int
}

func (r finalRow) job() jobPhoto {
	return jobPhoto{JobUUID: r.JobUUID, GroupKey: r.GroupKey, GroupSeq: r.GroupSeq}
}

// finalReturning is the RETURNING clause that fills a finalRow.
const finalReturning = ` RETURNING callback_url, job_uuid, group_key, group_seq`

// advancesAt is true when an event of attempt `attempt` that brings the
// photo to a status of rank `rank` moves it forward: (attempt, rank) only
// grows.
func advancesAt(attempt, rank string) string {
	return `(status_attempt < ` + attempt + ` OR (status_attempt = ` + attempt + ` AND
	(CASE status WHEN 'pending' THEN 0 WHEN 'processing' THEN 1 ELSE 2 END) < ` + rank + `))`
}

// advances is advancesAt for the parameters @attempt and @rank.
var advances = advancesAt("@attempt", "@rank")

// Complete writes the renditions and marks the photo completed in one
// transaction. Rows are unique per (photo, rendition, page); a later
// attempt's renditions replace all of the earlier ones (a reprocess may
// ask for other renditions: the photo then lists only those).
func (r *Repository) Complete(ctx context.Context, e *event.ThumbnailCreated) (bool, error) {
	return r.apply(ctx, e.PhotoID, r.completion, e, func(tx *gorm.DB) (final, error) {
		var row finalRow
		res := database.Scan(tx.Raw(`UPDATE photos
			SET status = 'completed', status_attempt = @attempt, updated_at = now(), completed_at = now(),
			    width = @w, height = @h, pages = @pages,
			    original_key = COALESCE(NULLIF(@key, ''), original_key),
			    filename = COALESCE(NULLIF(@filename, ''), filename),
			    content_type = COALESCE(NULLIF(@ct, ''), content_type),
			    bytes = COALESCE(NULLIF(@bytes, 0), bytes),
			    failure_stage = NULL, failure_code = NULL, failure_message = NULL, failure_retryable = NULL,
			    dead_letter_service = NULL, dead_letter_queue = NULL, dead_letter_reason = NULL, dead_lettered_at = NULL
			WHERE uuid = @id AND `+advances+finalReturning,
			map[string]any{
				"id": e.PhotoID, "attempt": e.Attempt, "rank": database.StatusCompleted.Rank(),
				"w": e.Width, "h": e.Height, "pages": e.Pages,
				"key": e.OriginalKey, "filename": e.Filename, "ct": e.ContentType, "bytes": e.Bytes,
			}), &row)
		if res.Error != nil {
			return final{}, fmt.Errorf("complete photo: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			return final{}, nil
		}
		if e.Attempt > 1 {
			if err := dropRenditions(tx, []string{e.PhotoID}); err != nil {
				return final{}, err
			}
		}
		if err := writeRenditions(tx, renditionRows(e)); err != nil {
			return final{}, err
		}
		return finishCompleted(ctx, tx, e.PhotoID, row)
	})
}

// renditionRows are the rendition rows of e.
func renditionRows(e *event.ThumbnailCreated) []database.Thumbnail {
	rows := make([]database.Thumbnail, 0, len(e.Renditions))
	for _, rd := range e.Renditions {
		rows = append(rows, database.Thumbnail{
			PhotoUUID: e.PhotoID, Rendition: rd.Name, Page: rd.Page, Width: rd.Width, Height: rd.Height,
			URL: rd.Key, Format: rd.Format, Bytes: rd.Bytes,
		})
	}
	return rows
}

// writeRenditions upserts rendition rows (of one photo or many) in one
// statement.
// renditionsPerInsert bounds the rows of one insert of renditions: about
// ten parameters a row stay below Postgres's 65,535 (a batch of completed
// PDFs has hundreds of pages each).
const renditionsPerInsert = 1000

// dropRenditions deletes the rendition rows of photos that are completing
// a later attempt, whose renditions replace them. (A first attempt has
// none: callers skip it, so the usual completion pays nothing for this.)
// The files stay in storage; a rendition made again overwrites its file.
func dropRenditions(tx *gorm.DB, photoIDs []string) error {
	if len(photoIDs) == 0 {
		return nil
	}
	if err := tx.Exec(`DELETE FROM photo_thumbnails WHERE photo_uuid IN @ids`,
		map[string]any{"ids": photoIDs}).Error; err != nil {
		return fmt.Errorf("drop earlier renditions: %w", err)
	}
	return nil
}

func writeRenditions(tx *gorm.DB, rows []database.Thumbnail) error {
	if len(rows) == 0 {
		return nil
	}
	if err := tx.Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "photo_uuid"}, {Name: "rendition"}, {Name: "page"}},
		DoUpdates: clause.AssignmentColumns([]string{"width", "height", "url", "format", "bytes", "created_at"}),
	}).CreateInBatches(&rows, renditionsPerInsert).Error; err != nil {
		return fmt.Errorf("write renditions: %w", err)
	}
	return nil
}

// finishCompleted moves the job of a photo just completed (and its
// renditions written) on and queues its callbacks; row is what the
// completing update returned.
func finishCompleted(ctx context.Context, tx *gorm.DB, photoID string, row finalRow) (final, error) {
	f := final{applied: true}
	job, requested, err := advanceJob(ctx, tx, photoID, row.job(), false, "")
	if err != nil {
		return final{}, err
	}
	f.requested = requested
	err = enqueue(tx, photoID, row.CallbackURL != nil, job, &f)
	return f, err
}

// Fail marks the photo failed with the event's stage, code and message,
// keeps the stored original it names (a failure after the download), and
// fails its job group (skipping the group's remaining photos).
func (r *Repository) Fail(ctx context.Context, e *event.PhotoFailed) (bool, error) {
	return r.apply(ctx, e.PhotoID, nil, e, func(tx *gorm.DB) (final, error) {
		var row finalRow
		res := database.Scan(tx.Raw(`UPDATE photos
			SET status = 'failed', status_attempt = @attempt, updated_at = now(),
			    failure_stage = @stage, failure_code = @code, failure_message = @msg, failure_retryable = @retryable,
			    original_key = COALESCE(NULLIF(@key, ''), original_key),
			    filename = COALESCE(NULLIF(@filename, ''), filename),
			    content_type = COALESCE(NULLIF(@ct, ''), content_type),
			    bytes = COALESCE(NULLIF(@bytes, 0), bytes),
			    width = COALESCE(NULLIF(@w, 0), width), height = COALESCE(NULLIF(@h, 0), height),
			    dead_letter_service = NULL, dead_letter_queue = NULL, dead_letter_reason = NULL, dead_lettered_at = NULL
			WHERE uuid = @id AND `+advances+finalReturning,
			map[string]any{
				"id": e.PhotoID, "attempt": e.Attempt, "rank": database.StatusFailed.Rank(),
				"stage": e.Stage, "code": e.Code, "msg": e.Message, "retryable": e.Retryable,
				"key": e.OriginalKey, "filename": e.Filename, "ct": e.ContentType, "bytes": e.Bytes,
				"w": e.Width, "h": e.Height,
			}), &row)
		if res.Error != nil {
			return final{}, fmt.Errorf("fail photo: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			return final{}, nil
		}
		f := final{applied: true}
		job, _, err := advanceJob(ctx, tx, e.PhotoID, row.job(), true, e.Message)
		if err != nil {
			return final{}, err
		}
		err = enqueue(tx, e.PhotoID, row.CallbackURL != nil, job, &f)
		return f, err
	})
}

// MarkDeadLettered records that a message about the photo waits in a
// dead-letter queue, unless the photo already finished that attempt.
func (r *Repository) MarkDeadLettered(ctx context.Context, e *event.PhotoDeadLettered) (bool, error) {
	// A photo is moved to its attempt as processing when the attempt is
	// requested; a mark of a newer attempt than the row knows (a row
	// requested by an earlier version, whose recorder set processing on
	// PhotoRequested) moves it there as processing.
	return r.apply(ctx, e.PhotoID, nil, e, func(tx *gorm.DB) (final, error) {
		res := tx.Exec(`UPDATE photos
			SET dead_letter_service = @service, dead_letter_queue = @queue, dead_letter_reason = @reason,
			    dead_lettered_at = now(), updated_at = now(),
			    status = CASE WHEN status_attempt < @attempt THEN 'processing'::photo_status ELSE status END,
			    status_attempt = GREATEST(status_attempt, @attempt)
			WHERE uuid = @id AND status_attempt <= @attempt
			  AND NOT (status_attempt = @attempt AND status IN ('completed', 'failed'))`,
			map[string]any{"id": e.PhotoID, "attempt": e.Attempt, "service": e.Service, "queue": e.Queue, "reason": e.Reason})
		return final{applied: res.RowsAffected > 0}, res.Error
	})
}
