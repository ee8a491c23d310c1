package bus_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/shared/bus"
	"github.com/photopipe/photopipe/shared/event"
)

// A handler that fails while its service stops (its transaction was
// cancelled by the stop, say) sends the message back to its queue, not to
// the dead-letter queue: the failure says nothing about the message.
func TestFailuresWhileStoppingGoBackToTheQueue(t *testing.T) {
	cfg := testConfig(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	wlog := watermill.NopLogger{}
	require.NoError(t, cfg.Declare(context.Background(), nil))
	pub, err := cfg.NewPublisher(wlog)
	require.NoError(t, err)
	defer pub.Close()
	sub, err := cfg.NewSubscriber(bus.Recorder, wlog)
	require.NoError(t, err)
	defer sub.Close()
	router, err := cfg.NewRouter(bus.Recorder, pub, wlog, log, bus.WithCloseTimeout(10*time.Second))
	require.NoError(t, err)
	started, release := make(chan struct{}, 1), make(chan struct{})
	var calls atomic.Int32
	require.NoError(t, bus.AddHandlers(router, sub, 1, wlog, cqrs.NewEventHandler("test.failed",
		func(context.Context, *event.PhotoFailed) error {
			if calls.Add(1) == 1 {
				started <- struct{}{}
				<-release
			}
			return errors.New("transaction cancelled: the service is stopping")
		})))
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- router.Run(ctx) }()
	<-router.Running()
	events, err := bus.NewEventBus(pub, wlog)
	require.NoError(t, err)
	require.NoError(t, events.Publish(context.Background(), &event.PhotoFailed{Header: event.NewHeader("p-stop", 1)}))

	<-started
	stop()
	time.Sleep(100 * time.Millisecond) // the router is closing
	close(release)
	require.NoError(t, <-done)
	require.NoError(t, sub.Close())

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
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	wlog := watermill.NopLogger{}
	require.NoError(t, cfg.Declare(context.Background(), nil))
	pub, err := cfg.NewPublisher(wlog)
	require.NoError(t, err)
	defer pub.Close()
	events, err := bus.NewEventBus(pub, wlog)
	require.NoError(t, err)
	queue := cfg.QueueName(event.TopicPhotoFailed, bus.Recorder)

	// run handles one message with handle and stops the router while it
	// runs; end, when set, is called once the router is closing.
	run := func(photo string, handle func(ctx context.Context) error, end func()) {
		sub, err := cfg.NewSubscriber(bus.Recorder, wlog)
		require.NoError(t, err)
		defer sub.Close()
		work, abandon := context.WithCancel(context.Background())
		defer abandon()
		router, err := cfg.NewRouter(bus.Recorder, pub, wlog, log, bus.WithWorkContext(work))
		require.NoError(t, err)
		started := make(chan struct{}, 1)
		require.NoError(t, bus.AddHandlers(router, sub, 1, wlog, cqrs.NewEventHandler("test.failed",
			func(ctx context.Context, e *event.PhotoFailed) error {
				if e.PhotoID != photo {
					return nil
				}
				started <- struct{}{}
				return handle(ctx)
			})))
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- router.Run(ctx) }()
		<-router.Running()
		require.NoError(t, events.Publish(context.Background(), &event.PhotoFailed{Header: event.NewHeader(photo, 1)}))
		<-started
		stop()
		if end != nil {
			time.Sleep(100 * time.Millisecond) // the router is closing
			end()
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

	// Finishes: its context outlives the stop.
	var sawCancel atomic.Bool
	run("p-finish", func(ctx context.Context) error {
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
	run("p-abandon", func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	}, func() {})
	require.Equal(t, 0, queueDepth(t, cfg.URL, bus.DeadLetterTopic(bus.Recorder)), "dead-lettered on the way out")
	require.Equal(t, 1, queueDepth(t, cfg.URL, queue), "the abandoned message is back in its queue")
}
