// Package outbox is the transactional outbox: events are written
// to the outbox table in the transaction that creates or changes the
// photos they are about, and a Relay publishes them once committed. A
// request that was accepted is therefore never lost, even while the broker
// is down.
package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"golang.org/x/sync/errgroup"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/photopipe/photopipe/shared/bus"
	"github.com/photopipe/photopipe/shared/database"
	"github.com/photopipe/photopipe/shared/event"
	"github.com/photopipe/photopipe/shared/logging"
)

// Add writes events to the outbox within tx, tagged with correlationID.
func Add(tx *gorm.DB, correlationID string, events ...event.Event) error {
	if len(events) == 0 {
		return nil
	}
	rows, err := Rows(correlationID, events...)
	if err != nil {
		return err
	}
	if err := tx.CreateInBatches(&rows, 500).Error; err != nil {
		return fmt.Errorf("write outbox: %w", err)
	}
	return nil
}

// Rows encodes events as the outbox rows Add writes, for a caller that
// writes them itself (in one statement with the change they belong to).
func Rows(correlationID string, events ...event.Event) ([]database.OutboxMessage, error) {
	rows := make([]database.OutboxMessage, 0, len(events))
	for _, e := range events {
		msg, err := bus.Marshaler.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("marshal %s: %w", event.Topic(e), err)
		}
		if correlationID != "" {
			msg.Metadata.Set(middleware.CorrelationIDMetadataKey, correlationID)
		}
		rows = append(rows, database.OutboxMessage{
			Topic: event.Topic(e), MessageID: msg.UUID, Payload: msg.Payload, Metadata: msg.Metadata,
		})
	}
	return rows, nil
}

// Relay publishes committed outbox rows and deletes them once the broker
// has taken them. Replicas share the table safely: rows are claimed with
// FOR UPDATE SKIP LOCKED. Rows of one topic go out together, in one Publish
// call of up to a parallel-th of the round (at least minChunk): give Run a
// batch publisher (bus.Config.NewBatchPublisher), which sends such a call in
// one broker transaction.
type Relay struct {
	// Linger is how long the relay waits, once woken, before it claims
	// rows, so that the rows committed meanwhile go in the same round:
	// under load a round then holds more events for the broker to take at
	// once (about 10% less CPU in all at 2,000 POST /photos/process a
	// second with 10 ms, mostly RabbitMQ's), each event a little later.
	// Set it before Run.
	Linger time.Duration

	db       *gorm.DB
	log      *slog.Logger
	batch    int
	parallel int
	interval time.Duration
	wake     chan struct{}
}

// NewRelay returns a Relay publishing up to batch rows per round, parallel
// at a time, looking every interval when not woken by Notify.
func NewRelay(db *gorm.DB, log *slog.Logger, batch, parallel int, interval time.Duration) *Relay {
	return &Relay{db: db, log: log, batch: batch, parallel: max(parallel, 1), interval: interval, wake: make(chan struct{}, 1)}
}

// Notify tells the relay that new rows were committed.
func (r *Relay) Notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run publishes until ctx ends. Failures (the broker is down) are logged
// and retried with backoff; the rows stay in the table meanwhile.
func (r *Relay) Run(ctx context.Context, pub message.Publisher) error {
	backoff := r.interval / 4
	for {
		n, err := r.Flush(ctx, pub)
		if ctx.Err() != nil {
			return nil
		}
		wait := r.interval
		switch {
		case err != nil:
			r.log.WarnContext(ctx, "outbox publish failed", slog.String("error", err.Error()))
			backoff = min(backoff*2, 5*time.Second)
			wait = backoff
		case n == r.batch:
			continue // more waiting
		default:
			backoff = r.interval / 4
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.wake:
			if r.Linger > 0 {
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(r.Linger):
				}
			}
		case <-time.After(wait):
		}
	}
}

// logPublished logs a published event with its photo and correlation ids:
// the service's line about the photo, for following it across services.
func (r *Relay) logPublished(ctx context.Context, row database.OutboxMessage) {
	var h event.Header
	_ = json.Unmarshal(row.Payload, &h)
	r.log.InfoContext(logging.With(ctx,
		slog.String("photo_id", h.PhotoID), slog.Int("attempt", h.Attempt),
		slog.String("correlation_id", row.Metadata[middleware.CorrelationIDMetadataKey]),
	), "event published", slog.String("event", row.Topic))
}

// minChunk is the fewest rows a relay publishes in one Publish call when it
// has that many: with a batch publisher (bus.Config.NewBatchPublisher) the
// broker takes them in one transaction, which costs it less per message the
// more it holds; up to Relay's parallel calls run at once.
const minChunk = 32

// chunk is rows[start:end] of a flush: one topic, published in one call.
type chunk struct{ start, end int }

// chunks splits rows, in their order, into runs of one topic of at most
// size rows.
func chunks(rows []database.OutboxMessage, size int) []chunk {
	var out []chunk
	for i := range rows {
		if n := len(out); n > 0 && out[n-1].end-out[n-1].start < size && rows[out[n-1].start].Topic == rows[i].Topic {
			out[n-1].end++
			continue
		}
		out = append(out, chunk{i, i + 1})
	}
	return out
}

// Flush publishes one batch and returns how many rows it published.
func (r *Relay) Flush(ctx context.Context, pub message.Publisher) (int, error) {
	published := 0
	var pubErr error
	err := r.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var rows []database.OutboxMessage
		if err := tx.Clauses(clause.Locking{Strength: "UPDATE", Options: "SKIP LOCKED"}).
			Order("id").Limit(r.batch).Find(&rows).Error; err != nil {
			return fmt.Errorf("read outbox: %w", err)
		}
		if len(rows) == 0 {
			return nil
		}
		done := make([]bool, len(rows))
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(r.parallel)
		publish := func(c chunk) {
			g.Go(func() error {
				msgs := make([]*message.Message, 0, c.end-c.start)
				for _, row := range rows[c.start:c.end] {
					msg := message.NewMessage(row.MessageID, row.Payload)
					for k, v := range row.Metadata {
						msg.Metadata.Set(k, v)
					}
					msg.SetContext(gctx)
					msgs = append(msgs, msg)
				}
				topic := rows[c.start].Topic
				if err := pub.Publish(topic, msgs...); err != nil {
					return fmt.Errorf("publish %s: %w", topic, err)
				}
				for i := c.start; i < c.end; i++ {
					done[i] = true
					r.logPublished(gctx, rows[i])
				}
				return nil
			})
		}
		// A publish the broker never confirms (a broker under a resource
		// alarm blocks its publishers) is not waited for past ctx (a
		// stop), nor is a free slot for the next chunk (g.Go waits for
		// one): the transaction rolls back and the rows stay for the
		// next round, whether or not the broker takes them in the end
		// (consumers take duplicates).
		waited := make(chan error, 1)
		go func() {
			for _, c := range chunks(rows, max((len(rows)+r.parallel-1)/r.parallel, minChunk)) {
				publish(c)
			}
			waited <- g.Wait()
		}()
		select {
		case pubErr = <-waited:
		case <-ctx.Done():
			return fmt.Errorf("publish: %w", ctx.Err())
		}
		ids := make([]int64, 0, len(rows))
		for i, ok := range done {
			if ok {
				ids = append(ids, rows[i].ID)
			}
		}
		if len(ids) > 0 {
			if err := tx.Where("id IN ?", ids).Delete(&database.OutboxMessage{}).Error; err != nil {
				return fmt.Errorf("delete published outbox rows: %w", err)
			}
		}
		// What was published is deleted even when some publishes failed;
		// the rest stays for the next round.
		published = len(ids)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return published, pubErr
}
