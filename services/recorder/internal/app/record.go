// Package app holds the recorder's use cases: apply each pipeline event to
// the photo's state, idempotently and never backwards.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/photopipe/photopipe/shared/bus"
	"github.com/photopipe/photopipe/shared/event"
	"github.com/photopipe/photopipe/shared/logging"
)

// Handler names. They name nothing on the broker, but stay stable for logs.
const (
	CompletedHandler  = "recorder.completed"
	FailedHandler     = "recorder.failed"
	DeadLetterHandler = "recorder.dead-lettered"
)

// Repository stores photo state. Each method applies its event only when
// that moves the photo forward (a newer attempt, or a later status within
// the same attempt) and reports whether it did.
type Repository interface {
	Complete(ctx context.Context, e *event.ThumbnailCreated) (bool, error)
	Fail(ctx context.Context, e *event.PhotoFailed) (bool, error)
	MarkDeadLettered(ctx context.Context, e *event.PhotoDeadLettered) (bool, error)
}

// Recorder handles the events that end a photo (ThumbnailCreated,
// PhotoFailed) and the dead-letter marks. A photo is moved to processing
// by whoever requests it (the ingest-api, or the recorder itself for the
// next photo of a job's group), in the same transaction.
type Recorder struct {
	repo Repository
	log  *slog.Logger
}

// New returns a Recorder over repo.
func New(repo Repository, log *slog.Logger) *Recorder {
	return &Recorder{repo: repo, log: log}
}

func (r *Recorder) ctx(ctx context.Context, h event.Header) context.Context {
	return logging.With(ctx, slog.String("photo_id", h.PhotoID), slog.Int("attempt", h.Attempt))
}

// check refuses events that can never apply; they go to the dead-letter
// queue for a person to look at instead of being retried.
func check(h event.Header) error {
	if err := uuid.Validate(h.PhotoID); err != nil {
		return bus.Permanent(fmt.Errorf("event %s: photo id %q: %w", h.EventID, h.PhotoID, err))
	}
	if h.Attempt < 1 {
		return bus.Permanent(fmt.Errorf("event %s: attempt %d is not positive", h.EventID, h.Attempt))
	}
	return nil
}

func (r *Recorder) done(ctx context.Context, what string, applied bool, err error) error {
	if err != nil {
		err = fmt.Errorf("record %s: %w", what, err)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && (strings.HasPrefix(pgErr.Code, "22") || strings.HasPrefix(pgErr.Code, "54")) {
			// A data exception (a NUL in a text, a number out of range)
			// or a program limit (a value too large): the same event
			// fails the same way every time.
			return bus.Permanent(err)
		}
		return err
	}
	if applied {
		r.log.InfoContext(ctx, "photo state recorded", slog.String("event", what))
	} else {
		r.log.DebugContext(ctx, "stale or duplicate event ignored", slog.String("event", what))
	}
	return nil
}

// Completed writes the renditions and completes the photo, atomically.
func (r *Recorder) Completed(ctx context.Context, e *event.ThumbnailCreated) error {
	if err := check(e.Header); err != nil {
		return err
	}
	ctx = r.ctx(ctx, e.Header)
	ok, err := r.repo.Complete(ctx, e)
	return r.done(ctx, event.TopicThumbnailCreated, ok, err)
}

// Failed records why the photo failed.
func (r *Recorder) Failed(ctx context.Context, e *event.PhotoFailed) error {
	if err := check(e.Header); err != nil {
		return err
	}
	ctx = r.ctx(ctx, e.Header)
	ok, err := r.repo.Fail(ctx, e)
	return r.done(ctx, event.TopicPhotoFailed, ok, err)
}

// DeadLettered records that the photo waits in a service's dead-letter
// queue, so it does not look like it is processing forever.
func (r *Recorder) DeadLettered(ctx context.Context, e *event.PhotoDeadLettered) error {
	if err := check(e.Header); err != nil {
		return err
	}
	ctx = r.ctx(ctx, e.Header)
	ok, err := r.repo.MarkDeadLettered(ctx, e)
	return r.done(ctx, event.TopicPhotoDeadLettered, ok, err)
}
