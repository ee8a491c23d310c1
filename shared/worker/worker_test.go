package worker_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/shared/bus"
	"github.com/photopipe/photopipe/shared/envconfig"
	"github.com/photopipe/photopipe/shared/event"
	"github.com/photopipe/photopipe/shared/testenv"
	"github.com/photopipe/photopipe/shared/worker"
)

// service runs worker.Run for the recorder with handle on PhotoFailed,
// publishes one PhotoFailed and waits until handle has it. It returns the
// health address, the stop (SIGTERM) and Run's result.
func service(t *testing.T, shutdown time.Duration, handle func(context.Context, *event.PhotoFailed) error) (cfg bus.Config, health string, stop func(), done <-chan error) {
	t.Helper()
	cfg = bus.LoadConfig(envconfig.New(func(string) string { return "" }), 1)
	cfg.URL = testenv.RabbitMQ(t)
	cfg.RetryMax = 0
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	bound := make(chan string, 1)
	result, finished := make(chan error, 1), make(chan struct{})
	go func() {
		defer close(finished)
		result <- worker.Run(ctx, worker.Options{
			Service: bus.Recorder, Bus: cfg, Workers: 1, HealthAddr: "127.0.0.1:0", HealthBound: bound, Log: log,
			ShutdownTimeout: shutdown,
			Handlers: func(*cqrs.EventBus) ([]cqrs.EventHandler, error) {
				return []cqrs.EventHandler{cqrs.NewEventHandler("test.failed", handle)}, nil
			},
		})
	}()
	select {
	case health = <-bound:
	case err := <-result:
		t.Fatalf("worker.Run: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-finished:
		case <-time.After(20 * time.Second):
			t.Error("worker.Run did not return")
		}
	})
	require.Eventually(t, func() bool { return get(t, health, "/readyz") == http.StatusOK }, 20*time.Second, 20*time.Millisecond)
	pub, err := cfg.NewPublisher(watermill.NopLogger{})
	require.NoError(t, err)
	defer pub.Close()
	events, err := bus.NewEventBus(pub, watermill.NopLogger{})
	require.NoError(t, err)
	require.NoError(t, events.Publish(context.Background(), &event.PhotoFailed{Header: event.NewHeader("p1", 1)}))
	return cfg, health, cancel, result
}

func get(t *testing.T, addr, path string) int {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func queueDepth(t *testing.T, url, queue string) int {
	t.Helper()
	ch := testenv.AMQPChannel(t, url)
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, amqp091.Table{})
	require.NoError(t, err)
	return q.Messages
}

// A stop lets the message in flight finish under a live context, while
// /metrics is still served and /readyz says the service is stopping; the
// message is acknowledged and Run returns nil.
func TestStopLetsTheMessageInFlightFinish(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	cancelled := make(chan bool, 1)
	cfg, health, stop, done := service(t, time.Minute, func(ctx context.Context, _ *event.PhotoFailed) error {
		close(started)
		<-release
		cancelled <- ctx.Err() != nil
		return nil
	})
	<-started
	stop()
	require.Eventually(t, func() bool { return get(t, health, "/readyz") == http.StatusServiceUnavailable }, 5*time.Second, 20*time.Millisecond,
		"ready while stopping")
	require.Equal(t, http.StatusOK, get(t, health, "/metrics"), "metrics while the message finishes")
	time.Sleep(200 * time.Millisecond)
	close(release)
	require.False(t, <-cancelled, "the message's context ended with the stop")
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return once the message finished")
	}
	require.Equal(t, 0, queueDepth(t, cfg.URL, cfg.QueueName(event.TopicPhotoFailed, bus.Recorder)), "acknowledged")
}

// Past the shutdown timeout a stop cancels the message's context and
// returns the message to its queue (not to the dead-letter queue), even
// when its handler does not return; Run returns nil a few seconds later.
func TestStopGivesUpAfterTheShutdownTimeout(t *testing.T) {
	const shutdown = 300 * time.Millisecond
	started := make(chan struct{}, 1)
	sawCancel := make(chan time.Time, 1)
	cfg, _, stop, done := service(t, shutdown, func(ctx context.Context, _ *event.PhotoFailed) error {
		select {
		case started <- struct{}{}:
		default:
			return nil // a redelivery, after the test
		}
		<-ctx.Done()
		sawCancel <- time.Now()
		select {} // a handler that never returns
	})
	<-started
	t0 := time.Now()
	stop()
	at := <-sawCancel
	require.GreaterOrEqual(t, at.Sub(t0), shutdown, "cancelled before the shutdown timeout")
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(15 * time.Second):
		t.Fatal("Run waited for a handler that does not return")
	}
	t.Logf("Run returned %s after the stop", time.Since(t0).Round(time.Millisecond))
	require.Equal(t, 0, queueDepth(t, cfg.URL, bus.DeadLetterTopic(bus.Recorder)), "dead-lettered")
	require.Eventually(t, func() bool {
		return queueDepth(t, cfg.URL, cfg.QueueName(event.TopicPhotoFailed, bus.Recorder)) == 1
	}, 5*time.Second, 50*time.Millisecond, "the message is back in its queue")
}
