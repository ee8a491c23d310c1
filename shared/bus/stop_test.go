package bus_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/shared/bus"
	"github.com/photopipe/photopipe/shared/event"
)

// stopWhileHandling runs a router of the recorder, publishes a PhotoFailed
// for photo and stops the router while handle has it. With withWork the
// messages run under a work context (bus.WithWorkContext). afterStop, when
// set, is called while the router closes, and then the work context ends.
// It returns once the router and its subscriber have stopped.
func stopWhileHandling(t *testing.T, cfg bus.Config, photo string, withWork bool, handle func(ctx context.Context) error, afterStop func()) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	wlog := watermill.NopLogger{}
	require.NoError(t, cfg.Declare(context.Background(), nil))
	pub, err := cfg.NewPublisher(wlog)
	require.NoError(t, err)
	defer pub.Close()
	events, err := bus.NewEventBus(pub, wlog)
	require.NoError(t, err)
	sub, err := cfg.NewSubscriber(bus.Recorder, wlog)
	require.NoError(t, err)
	defer sub.Close()
	work, abandon := context.WithCancel(context.Background())
	defer abandon()
	opts := []bus.RouterOption{bus.WithCloseTimeout(10 * time.Second)}
	if withWork {
		opts = append(opts, bus.WithWorkContext(work))
	}
	router, err := cfg.NewRouter(bus.Recorder, pub, wlog, log, opts...)
	require.NoError(t, err)
	started := make(chan struct{})
	var once sync.Once
	require.NoError(t, bus.AddHandlers(router, sub, 1, wlog, cqrs.NewEventHandler("test.failed",
		func(ctx context.Context, e *event.PhotoFailed) error {
			if e.PhotoID != photo {
				return nil
			}
			once.Do(func() { close(started) })
			return handle(ctx)
		})))
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- router.Run(ctx) }()
	<-router.Running()
	require.NoError(t, events.Publish(context.Background(), &event.PhotoFailed{Header: event.NewHeader(photo, 1)}))
	<-started
	stop()
	if afterStop != nil {
		time.Sleep(100 * time.Millisecond) // the router is closing
		afterStop()
		abandon()
	}
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("the router did not stop")
	}
	require.NoError(t, sub.Close())
}

// A handler that fails while its service stops (its transaction was
// cancelled by the stop, say) sends the message back to its queue, not to
// the dead-letter queue: the failure says nothing about the message.
func TestFailuresWhileStoppingGoBackToTheQueue(t *testing.T) {
	cfg := testConfig(t)
	release := make(chan struct{})
	var calls atomic.Int32
	stopWhileHandling(t, cfg, "p-stop", false, func(context.Context) error {
		if calls.Add(1) == 1 {
			<-release
		}
		return errors.New("transaction cancelled: the service is stopping")
	}, func() { close(release) })

	require.Equal(t, 0, queueDepth(t, cfg.URL, bus.DeadLetterTopic(bus.Recorder)), "dead-lettered on the way out")
	require.Equal(t, 1, queueDepth(t, cfg.URL, cfg.QueueName(event.TopicPhotoFailed, bus.Recorder)),
		"the message is back in its queue")
	require.GreaterOrEqual(t, calls.Load(), int32(1))
}

// With a work context, a message in flight when the router starts closing
// is handled to its end under a live context and acknowledged; ending work
// cancels the context of one still running, which then goes back to its
// queue.
func TestWorkContextOutlivesTheRouterStop(t *testing.T) {
	cfg := testConfig(t)
	queue := cfg.QueueName(event.TopicPhotoFailed, bus.Recorder)

	// Finishes: its context outlives the stop.
	var sawCancel atomic.Bool
	stopWhileHandling(t, cfg, "p-finish", true, func(ctx context.Context) error {
		select {
		case <-ctx.Done():
			sawCancel.Store(true)
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
			return nil
		}
	}, nil)
	require.False(t, sawCancel.Load(), "the handler's context ended with the router's stop")
	require.Equal(t, 0, queueDepth(t, cfg.URL, queue), "the finished message was acknowledged")

	// Abandoned: ending work cancels it, and it goes back to its queue.
	stopWhileHandling(t, cfg, "p-abandon", true, func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	}, func() {})
	require.Equal(t, 0, queueDepth(t, cfg.URL, bus.DeadLetterTopic(bus.Recorder)), "dead-lettered on the way out")
	require.Equal(t, 1, queueDepth(t, cfg.URL, queue), "the abandoned message is back in its queue")
}
