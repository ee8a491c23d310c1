package postgres

import (
	"context"
	"fmt"

	"gorm.io/gorm"

	"github.com/photopipe/photopipe/shared/bus"
	"github.com/photopipe/photopipe/shared/deadletter"
	"github.com/photopipe/photopipe/shared/event"
	"github.com/photopipe/photopipe/shared/outbox"
)

// EndDiscarded ends the attempts that waited for the dead letters an
// operator is discarding from service's dead-letter queue: for each, a
// PhotoFailed (code discarded, retryable) goes into the outbox, and the
// recorder records it like any failure (a photo that has moved on since
// ignores it). Without it such a photo would stay processing for good,
// and refuse new attempts. Its type fits deadletter.Admin.Discarding.
func (r *Repository) EndDiscarded(ctx context.Context, service string, entries []deadletter.Entry) error {
	stage, ok := discardStages[service]
	if !ok {
		return fmt.Errorf("end discarded attempts: unknown service %q", service)
	}
	type failure struct {
		e             *event.PhotoFailed
		correlationID string
	}
	var failures []failure
	for _, d := range entries {
		if !endsAttempt[d.Event] || d.PhotoID == "" || d.Attempt < 1 {
			continue // a dead-letter mark, or a message of no photo attempt
		}
		failures = append(failures, failure{&event.PhotoFailed{
			Header: event.NewHeader(d.PhotoID, d.Attempt), Stage: stage, Code: event.CodeDiscarded,
			Message: fmt.Sprintf("an operator discarded the %s message that waited in the %s dead-letter queue (it had failed: %s)",
				d.Event, service, d.Reason),
			Retryable: true,
		}, d.CorrelationID})
	}
	if len(failures) == 0 {
		return nil
	}
	err := r.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		for _, f := range failures {
			if err := outbox.Add(tx, f.correlationID, f.e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("end discarded attempts: %w", err)
	}
	r.notify()
	return nil
}

// discardStages is the stage a photo's attempt ends at when a dead
// letter of the service is discarded.
var discardStages = map[string]string{
	bus.Downloader: event.StageDownload,
	bus.Resizer:    event.StageResize,
	bus.Recorder:   event.StageRecord,
}

// endsAttempt names the events whose loss leaves an attempt unfinished;
// a PhotoDeadLettered is only a mark about another message.
var endsAttempt = map[string]bool{
	event.TopicPhotoRequested: true, event.TopicPhotoDownloaded: true,
	event.TopicThumbnailCreated: true, event.TopicPhotoFailed: true,
}
