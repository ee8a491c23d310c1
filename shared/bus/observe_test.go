package bus_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/shared/bus"
	"github.com/photopipe/photopipe/shared/envconfig"
	"github.com/photopipe/photopipe/shared/event"
)

// observer records what the router reports.
type observer struct {
	mu      sync.Mutex
	handled map[string]map[bus.Outcome]int // by handler
	retried map[string]int
}

func (o *observer) MessageHandled(handler string, outcome bus.Outcome, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.handled[handler] == nil {
		o.handled[handler] = map[bus.Outcome]int{}
	}
	o.handled[handler][outcome]++
}

func (o *observer) MessageRetried(handler string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.retried[handler]++
}

func (o *observer) snapshot() (map[bus.Outcome]int, int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[bus.Outcome]int{}
	for k, v := range o.handled["test.classify"] {
		out[k] = v
	}
	return out, o.retried["test.classify"]
}

// TestRouterClassifiesOutcomes runs the real middleware stack over an
// in-process pub/sub: each photo id makes the handler behave differently,
// and the observer must see each message's outcome and every retry once.
func TestRouterClassifiesOutcomes(t *testing.T) {
	t.Parallel()
	cfg := bus.LoadConfig(envconfig.New(func(string) string { return "" }), 8)
	cfg.RetryMax = 2
	cfg.RetryInitial = time.Millisecond
	cfg.RetryMaxInterval = 2 * time.Millisecond
	wlog := watermill.NopLogger{}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pubsub := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: 16}, wlog)
	t.Cleanup(func() { _ = pubsub.Close() })
	events, err := bus.NewEventBus(pubsub, wlog)
	require.NoError(t, err)

	var mu sync.Mutex
	runs := map[string]int{}
	handle := func(ctx context.Context, e *event.PhotoRequested) error {
		mu.Lock()
		runs[e.PhotoID]++
		n := runs[e.PhotoID]
		mu.Unlock()
		switch e.PhotoID {
		case "ok":
			return nil
		case "photo-failed": // bad input: PhotoFailed, acknowledged
			return events.Publish(ctx, &event.PhotoFailed{Header: event.NewHeader(e.PhotoID, e.Attempt), Code: event.CodeDecodeError})
		case "flaky": // fails once, then works
			if n == 1 {
				return errors.New("storage hiccup")
			}
			return nil
		case "fails-then-photo-failed": // a transient error, then bad input
			if n == 1 {
				return errors.New("storage hiccup")
			}
			return events.Publish(ctx, &event.PhotoFailed{Header: event.NewHeader(e.PhotoID, e.Attempt), Code: event.CodeDecodeError})
		case "broken": // never works: retried, then dead-lettered
			return errors.New("storage down")
		case "invalid": // permanent: dead-lettered at once
			return bus.Permanent(errors.New("not a photo id"))
		}
		return nil
	}

	obs := &observer{handled: map[string]map[bus.Outcome]int{}, retried: map[string]int{}}
	router, err := cfg.NewRouter(bus.Downloader, pubsub, wlog, log, bus.WithObserver(obs))
	require.NoError(t, err)
	// One worker: the in-process pub/sub gives every subscription every message.
	require.NoError(t, bus.AddHandlers(router, pubsub, 1, wlog, cqrs.NewEventHandler("test.classify", handle)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- router.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	<-router.Running()

	for _, id := range []string{"ok", "photo-failed", "flaky", "fails-then-photo-failed", "broken", "invalid"} {
		require.NoError(t, events.Publish(context.Background(), &event.PhotoRequested{Header: event.NewHeader(id, 1)}))
	}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		got, retried := obs.snapshot()
		assert.Equal(c, map[bus.Outcome]int{
			bus.OutcomeOK:               2, // ok, flaky
			bus.OutcomePermanentFailure: 2, // photo-failed, fails-then-photo-failed
			bus.OutcomeDeadLettered:     2, // broken (after 2 retries), invalid (no retry)
		}, got)
		assert.Equal(c, 1+1+2, retried) // flaky, fails-then-photo-failed, broken twice
	}, 10*time.Second, 10*time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, 3, runs["broken"])
	require.Equal(t, 1, runs["invalid"])
}

// TestQueueDepth counts a dead-letter queue, and keeps counting after
// asking for a queue that does not exist (which closes the channel).
func TestQueueDepth(t *testing.T) {
	if testing.Short() {
		t.Skip("needs RabbitMQ")
	}
	cfg := testConfig(t)
	ctx := context.Background()
	require.NoError(t, cfg.Declare(ctx, nil))
	qd := cfg.NewQueueDepth()
	t.Cleanup(func() { _ = qd.Close() })
	queue := bus.DeadLetterTopic(bus.Resizer)
	n, err := qd.Depth(ctx, queue)
	require.NoError(t, err)
	require.Zero(t, n)

	pub, err := cfg.NewPublisher(watermill.NopLogger{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })
	require.NoError(t, pub.Publish(queue, message.NewMessage(watermill.NewUUID(), []byte(`{}`))))
	require.Eventually(t, func() bool {
		n, err := qd.Depth(ctx, queue)
		return err == nil && n == 1
	}, 5*time.Second, 50*time.Millisecond)

	_, err = qd.Depth(ctx, "no-such-queue")
	require.Error(t, err)
	n, err = qd.Depth(ctx, queue)
	require.NoError(t, err)
	require.Equal(t, 1, n)
}
