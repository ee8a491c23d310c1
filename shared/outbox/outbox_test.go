package outbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/photopipe/photopipe/shared/bus"
	"github.com/photopipe/photopipe/shared/database"
	"github.com/photopipe/photopipe/shared/envconfig"
	"github.com/photopipe/photopipe/shared/event"
	"github.com/photopipe/photopipe/shared/outbox"
	"github.com/photopipe/photopipe/shared/testenv"
)

// relayEnv is a migrated database and a declared bus of the test's own.
func relayEnv(t *testing.T) (*gorm.DB, bus.Config) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs PostgreSQL and RabbitMQ; skipped under -short")
	}
	ctx := t.Context()
	db, err := database.Open(ctx, database.Config{
		URL: testenv.Postgres(t), MaxOpenConns: 4, MaxIdleConns: 4, ConnectTimeout: 30 * time.Second, Migrate: true,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = database.Close(db) })
	cfg := bus.LoadConfig(envconfig.New(func(string) string { return "" }), 8)
	cfg.URL = testenv.RabbitMQ(t)
	require.NoError(t, cfg.Validate())
	require.NoError(t, cfg.Declare(ctx, nil))
	return db, cfg
}

// drain takes every message waiting in queue and returns them.
func drain(t *testing.T, url, queue string) []amqp091.Delivery {
	t.Helper()
	ch := testenv.AMQPChannel(t, url)
	var out []amqp091.Delivery
	for {
		d, ok, err := ch.Get(queue, true)
		require.NoError(t, err)
		if !ok {
			return out
		}
		out = append(out, d)
	}
}

func TestRelayPublishesInBatchesAndDeletesWhatWasTaken(t *testing.T) {
	db, cfg := relayEnv(t)
	ctx := t.Context()
	// 70 PhotoRequested with 5 PhotoFailed among them: runs of one topic
	// go out together, the rest of the round beside them.
	var want []string
	require.NoError(t, db.Transaction(func(tx *gorm.DB) error {
		for i := range 75 {
			id := fmt.Sprintf("photo-%02d", i)
			var e event.Event = &event.PhotoRequested{Header: event.NewHeader(id, 1), URL: "http://example.com/" + id}
			if i%15 == 7 {
				e = &event.PhotoFailed{Header: event.NewHeader(id, 1), Stage: event.StageDownload, Code: event.CodeDownloadError}
			} else {
				want = append(want, id)
			}
			if err := outbox.Add(tx, "corr-"+id, e); err != nil {
				return err
			}
		}
		return nil
	}))
	pub, err := cfg.NewBatchPublisher(watermill.NopLogger{})
	require.NoError(t, err)
	defer pub.Close()
	relay := outbox.NewRelay(db, slog.New(slog.DiscardHandler), 200, 8, time.Second)

	n, err := relay.Flush(ctx, pub)
	require.NoError(t, err)
	require.Equal(t, 75, n)
	var left int64
	require.NoError(t, db.Model(&database.OutboxMessage{}).Count(&left).Error)
	require.Zero(t, left, "published rows are deleted")

	got := drain(t, cfg.URL, cfg.QueueName(event.Topic(&event.PhotoRequested{}), bus.Downloader))
	require.Len(t, got, 70)
	var ids []string
	for _, d := range got {
		var h event.Header
		require.NoError(t, json.Unmarshal(d.Body, &h))
		ids = append(ids, h.PhotoID)
		require.Equal(t, "corr-"+h.PhotoID, d.Headers[middleware.CorrelationIDMetadataKey], "correlation id travels")
	}
	sort.Strings(ids)
	require.Equal(t, want, ids)
	require.Len(t, drain(t, cfg.URL, cfg.QueueName(event.Topic(&event.PhotoFailed{}), bus.Recorder)), 5)

	n, err = relay.Flush(ctx, pub)
	require.NoError(t, err)
	require.Zero(t, n, "nothing left to publish")
}

func TestRelayKeepsRowsWhenTheBrokerFails(t *testing.T) {
	db, cfg := relayEnv(t)
	require.NoError(t, db.Transaction(func(tx *gorm.DB) error {
		return outbox.Add(tx, "", &event.PhotoRequested{Header: event.NewHeader("p1", 1), URL: "http://example.com/a.jpg"})
	}))
	pub, err := cfg.NewBatchPublisher(watermill.NopLogger{})
	require.NoError(t, err)
	require.NoError(t, pub.Close())
	relay := outbox.NewRelay(db, slog.New(slog.DiscardHandler), 200, 8, time.Second)
	_, err = relay.Flush(context.Background(), pub)
	require.Error(t, err)
	var left int64
	require.NoError(t, db.Model(&database.OutboxMessage{}).Count(&left).Error)
	require.EqualValues(t, 1, left, "an unpublished row stays for the next round")
}

// A flush whose publishes the broker never confirms ends with its
// context (a stop) and keeps the rows for the next round, also when more
// chunks wait for a slot than run at once (topics alternate: a chunk each).
func TestFlushDoesNotWaitPastItsContextForAPublish(t *testing.T) {
	db, _ := relayEnv(t)
	require.NoError(t, db.Transaction(func(tx *gorm.DB) error {
		for i := range 5 {
			id := fmt.Sprintf("p%d", i)
			var e event.Event = &event.PhotoRequested{Header: event.NewHeader(id, 1), URL: "http://example.com/a.jpg"}
			if i%2 == 1 {
				e = &event.PhotoFailed{Header: event.NewHeader(id, 1), Stage: event.StageDownload, Code: event.CodeDownloadError}
			}
			if err := outbox.Add(tx, "", e); err != nil {
				return err
			}
		}
		return nil
	}))
	pub := hangingPublisher{release: make(chan struct{})}
	defer close(pub.release)
	relay := outbox.NewRelay(db, slog.New(slog.DiscardHandler), 200, 2, time.Second)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := relay.Flush(ctx, pub)
		done <- err
	}()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.DeadlineExceeded)
	case <-time.After(10 * time.Second):
		t.Fatal("Flush waited past its context for a publish")
	}
	var left int64
	require.NoError(t, db.Model(&database.OutboxMessage{}).Count(&left).Error)
	require.EqualValues(t, 5, left, "the rows stay for the next round")
}

// hangingPublisher's Publish waits until release is closed, as for a
// confirm the broker does not send.
type hangingPublisher struct{ release chan struct{} }

func (p hangingPublisher) Publish(string, ...*message.Message) error {
	<-p.release
	return errors.New("released")
}

func (p hangingPublisher) Close() error { return nil }

// countingPublisher records how many messages each Publish call carried.
type countingPublisher struct {
	mu    sync.Mutex
	calls []int
}

func (p *countingPublisher) Publish(_ string, msgs ...*message.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, len(msgs))
	return nil
}

func (p *countingPublisher) Close() error { return nil }

func (p *countingPublisher) published() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.calls)
}

// TestRelayLingers: woken, the relay waits Linger before it claims rows,
// so that rows committed in the meantime go out in the same round.
func TestRelayLingers(t *testing.T) {
	db, _ := relayEnv(t)
	relay := outbox.NewRelay(db, slog.New(slog.DiscardHandler), 200, 8, time.Minute)
	relay.Linger = 2 * time.Second
	pub := &countingPublisher{}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	// Woken before it starts: after its first round (nothing to publish)
	// it lingers, and the rows below are committed while it does.
	relay.Notify()
	go func() { done <- relay.Run(ctx, pub) }()
	t.Cleanup(func() { cancel(); <-done })
	time.Sleep(300 * time.Millisecond) // the first round is over

	for i := range 3 {
		require.NoError(t, db.Transaction(func(tx *gorm.DB) error {
			return outbox.Add(tx, "", &event.PhotoRequested{Header: event.NewHeader(fmt.Sprint("p", i), 1), URL: "http://example.com/a.jpg"})
		}))
		relay.Notify()
		if i == 0 {
			time.Sleep(200 * time.Millisecond) // time enough to publish a row, well inside Linger
		}
	}
	require.Eventually(t, func() bool { return len(pub.published()) > 0 }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, []int{3}, pub.published(), "the three rows went out together, in one call")
}
