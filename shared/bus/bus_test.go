package bus_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
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
)

func testConfig(t *testing.T) bus.Config {
	t.Helper()
	cfg := bus.LoadConfig(envconfig.New(func(string) string { return "" }), 8)
	cfg.URL = testenv.RabbitMQ(t)
	cfg.RetryMax = 2
	cfg.RetryInitial = 10 * time.Millisecond
	cfg.RetryMaxInterval = 20 * time.Millisecond
	require.NoError(t, cfg.Validate())
	return cfg
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	cfg := bus.LoadConfig(envconfig.New(func(k string) string {
		return map[string]string{"AMQP_URL": "http://x", "AMQP_PREFETCH": "0", "AMQP_QUEUE_TYPE": "stream"}[k]
	}), 8)
	err := cfg.Validate()
	require.Error(t, err)
	for _, name := range []string{"AMQP_URL", "AMQP_PREFETCH", "AMQP_QUEUE_TYPE"} {
		require.ErrorContains(t, err, name)
	}
}

func TestQueueNames(t *testing.T) {
	t.Parallel()
	cfg := bus.LoadConfig(envconfig.New(func(string) string { return "" }), 1)
	require.Equal(t, "photo-processor", cfg.QueueName(event.TopicPhotoRequested, bus.Downloader))
	require.Equal(t, "ThumbnailCreated_recorder", cfg.QueueName(event.TopicThumbnailCreated, bus.Recorder))
	require.Equal(t, "PhotoDownloaded_resizer", cfg.QueueName(event.TopicPhotoDownloaded, bus.Resizer))
	require.Equal(t, "dead-letter.resizer", bus.DeadLetterTopic(bus.Resizer))
}

func TestPermanent(t *testing.T) {
	t.Parallel()
	base := errors.New("bad input")
	err := bus.Permanent(base)
	require.True(t, bus.IsPermanent(err))
	require.True(t, bus.IsPermanent(errors.Join(errors.New("x"), err)))
	require.ErrorIs(t, err, base)
	require.False(t, bus.IsPermanent(base))
	require.NoError(t, bus.Permanent(nil))
}

// inspectQueue declares queue passively on the broker at url: its state,
// or found false when it does not exist.
func inspectQueue(t *testing.T, url, queue string) (q amqp091.Queue, found bool) {
	t.Helper()
	ch := testenv.AMQPChannel(t, url)
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	var amqpErr *amqp091.Error
	if errors.As(err, &amqpErr) && amqpErr.Code == amqp091.NotFound {
		return q, false
	}
	require.NoError(t, err)
	return q, true
}

func queueDepth(t *testing.T, url, queue string) int {
	t.Helper()
	q, found := inspectQueue(t, url, queue)
	require.True(t, found, "queue %s exists", queue)
	return q.Messages
}

// queueExists reports whether queue is declared on the broker at url.
func queueExists(t *testing.T, url, queue string) bool {
	t.Helper()
	_, found := inspectQueue(t, url, queue)
	return found
}

func TestDeclareCreatesEveryQueueIdempotently(t *testing.T) {
	cfg := testConfig(t)
	ctx := context.Background()
	require.NoError(t, cfg.Declare(ctx, nil))
	require.NoError(t, cfg.Declare(ctx, nil), "declaring twice is fine")
	for _, s := range bus.Subscriptions {
		require.Zero(t, queueDepth(t, cfg.URL, cfg.QueueName(s.Topic, s.Service)))
	}
	for _, svc := range bus.WorkerServices {
		require.Zero(t, queueDepth(t, cfg.URL, bus.DeadLetterTopic(svc)))
	}

	// A PhotoRequested reaches the downloader's queue.
	pub, err := cfg.NewPublisher(watermill.NopLogger{})
	require.NoError(t, err)
	defer pub.Close()
	events, err := bus.NewEventBus(pub, watermill.NopLogger{})
	require.NoError(t, err)
	require.NoError(t, events.Publish(ctx, &event.PhotoRequested{Header: event.NewHeader("p", 1)}))
	require.Eventually(t, func() bool {
		return queueDepth(t, cfg.URL, "photo-processor") == 1
	}, 5*time.Second, 50*time.Millisecond)
}

// An earlier version's recorder queues (bound, holding messages) go at the
// next Declare, except while a consumer of that version still holds one.
func TestDeclareDeletesObsoleteQueuesOnceUnused(t *testing.T) {
	cfg := testConfig(t)
	ctx := context.Background()
	require.Len(t, bus.ObsoleteQueues, 2)
	require.NoError(t, cfg.Declare(ctx, nil), "nothing to delete is fine")

	ch := testenv.AMQPChannel(t, cfg.URL)
	for _, q := range bus.ObsoleteQueues {
		_, err := ch.QueueDeclare(q, true, false, false, false, amqp091.Table{"x-queue-type": "quorum"})
		require.NoError(t, err)
		require.NoError(t, ch.QueueBind(q, "", event.TopicPhotoRequested, false, nil))
	}
	require.NoError(t, ch.PublishWithContext(ctx, event.TopicPhotoRequested, "", false, false, amqp091.Publishing{Body: []byte("{}")}))
	require.Eventually(t, func() bool { return queueDepth(t, cfg.URL, bus.ObsoleteQueues[0]) == 1 }, 5*time.Second, 50*time.Millisecond)
	held, err := ch.Consume(bus.ObsoleteQueues[1], "earlier-recorder", false, false, false, false, nil)
	require.NoError(t, err)

	require.NoError(t, cfg.Declare(ctx, nil), "a queue still in use is left, not an error")
	require.False(t, queueExists(t, cfg.URL, bus.ObsoleteQueues[0]), "unused obsolete queue deleted with its messages")
	require.True(t, queueExists(t, cfg.URL, bus.ObsoleteQueues[1]), "queue held by an earlier recorder kept")

	d := <-held
	require.NoError(t, d.Nack(false, true))
	require.NoError(t, ch.Close())
	require.NoError(t, cfg.Declare(ctx, nil))
	require.False(t, queueExists(t, cfg.URL, bus.ObsoleteQueues[1]), "deleted once its consumer stopped")
	for _, s := range bus.Subscriptions {
		require.True(t, queueExists(t, cfg.URL, cfg.QueueName(s.Topic, s.Service)))
	}
}

// runRouter runs a router for service with handle on PhotoFailed until the
// test ends.
func runRouter(t *testing.T, cfg bus.Config, service string, handle func(context.Context, *event.PhotoFailed) error) *cqrs.EventBus {
	t.Helper()
	return runRouterMarking(t, cfg, service, handle, nil)
}

// runRouterMarking is runRouter that also passes the marks of dead-letter
// copies to mark, when not nil.
func runRouterMarking(t *testing.T, cfg bus.Config, service string, handle func(context.Context, *event.PhotoFailed) error,
	mark func(context.Context, *event.PhotoDeadLettered) error) *cqrs.EventBus {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	wlog := watermill.NopLogger{}
	require.NoError(t, cfg.Declare(context.Background(), nil))
	pub, err := cfg.NewPublisher(wlog)
	require.NoError(t, err)
	sub, err := cfg.NewSubscriber(service, wlog)
	require.NoError(t, err)
	router, err := cfg.NewRouter(service, pub, wlog, log)
	require.NoError(t, err)
	require.NoError(t, bus.AddHandlers(router, sub, 2, wlog, cqrs.NewEventHandler("test.failed", handle)))
	if mark != nil {
		cfg.AddDeadLetterMarks(router, sub, mark, log)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- router.Run(ctx) }()
	<-router.Running()
	events, err := bus.NewEventBus(pub, wlog)
	require.NoError(t, err)
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
		_ = sub.Close()
		_ = pub.Close()
	})
	return events
}

type deadLetter struct {
	headers amqp091.Table
	body    []byte
}

func getDeadLetter(t *testing.T, url, service string) deadLetter {
	t.Helper()
	ch := testenv.AMQPChannel(t, url)
	defer ch.Close()
	var got deadLetter
	require.Eventually(t, func() bool {
		d, ok, err := ch.Get(bus.DeadLetterTopic(service), true)
		require.NoError(t, err)
		if ok {
			got = deadLetter{headers: d.Headers, body: d.Body}
		}
		return ok
	}, 10*time.Second, 50*time.Millisecond)
	return got
}

func TestTransientErrorsAreRetriedThenDeadLettered(t *testing.T) {
	cfg := testConfig(t)
	var calls atomic.Int32
	events := runRouter(t, cfg, bus.Recorder, func(context.Context, *event.PhotoFailed) error {
		calls.Add(1)
		return errors.New("database unavailable")
	})
	ctx := bus.WithCorrelationID(context.Background(), "corr-1")
	require.NoError(t, events.Publish(ctx, &event.PhotoFailed{Header: event.NewHeader("p1", 1), Code: "x"}))

	dl := getDeadLetter(t, cfg.URL, bus.Recorder)
	require.EqualValues(t, 1+cfg.RetryMax, calls.Load(), "one try plus the retries")
	require.Equal(t, "PhotoFailed_recorder", dl.headers[bus.QueueKey], "the queue to replay to")
	require.Equal(t, "recorder", dl.headers[bus.ServiceKey])
	require.Equal(t, "PhotoFailed", dl.headers["topic_poisoned"])
	require.Contains(t, dl.headers["reason_poisoned"], "database unavailable")
	require.Equal(t, "corr-1", dl.headers["correlation_id"], "the correlation id survives")
	var e event.PhotoFailed
	require.NoError(t, json.Unmarshal(dl.body, &e))
	require.Equal(t, "p1", e.PhotoID)
}

func TestPermanentErrorsSkipRetries(t *testing.T) {
	cfg := testConfig(t)
	var calls atomic.Int32
	events := runRouter(t, cfg, bus.Recorder, func(context.Context, *event.PhotoFailed) error {
		calls.Add(1)
		return bus.Permanent(errors.New("malformed"))
	})
	require.NoError(t, events.Publish(context.Background(), &event.PhotoFailed{Header: event.NewHeader("p2", 1)}))
	dl := getDeadLetter(t, cfg.URL, bus.Recorder)
	require.EqualValues(t, 1, calls.Load())
	require.Contains(t, dl.headers["reason_poisoned"], "malformed")
}

func TestPanicsAreRecoveredAndDeadLettered(t *testing.T) {
	cfg := testConfig(t)
	cfg.RetryMax = 0
	events := runRouter(t, cfg, bus.Recorder, func(context.Context, *event.PhotoFailed) error {
		panic("decoder exploded")
	})
	require.NoError(t, events.Publish(context.Background(), &event.PhotoFailed{Header: event.NewHeader("p3", 1)}))
	dl := getDeadLetter(t, cfg.URL, bus.Recorder)
	require.Contains(t, dl.headers["reason_poisoned"], "decoder exploded")
}

func TestCorrelationIDFlowsIntoHandlers(t *testing.T) {
	cfg := testConfig(t)
	got := make(chan string, 1)
	events := runRouter(t, cfg, bus.Recorder, func(ctx context.Context, _ *event.PhotoFailed) error {
		got <- bus.CorrelationID(ctx)
		return nil
	})
	require.NoError(t, events.Publish(bus.WithCorrelationID(context.Background(), "corr-9"), &event.PhotoFailed{Header: event.NewHeader("p4", 1)}))
	select {
	case id := <-got:
		require.Equal(t, "corr-9", id)
	case <-time.After(10 * time.Second):
		t.Fatal("handler not called")
	}
}

// A message that was delivered MaxDeliveries times without an ack (its
// consumers died holding it) goes to the dead-letter queue unhandled.
func TestDeliveryLimitStopsCrashLoops(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxDeliveries = 2
	ctx := context.Background()
	require.NoError(t, cfg.Declare(ctx, nil))
	pub, err := cfg.NewPublisher(watermill.NopLogger{})
	require.NoError(t, err)
	defer pub.Close()
	events, err := bus.NewEventBus(pub, watermill.NopLogger{})
	require.NoError(t, err)
	require.NoError(t, events.Publish(ctx, &event.PhotoFailed{Header: event.NewHeader("p5", 1)}))

	// Two consumers "crash": take the message and close without an ack.
	for range cfg.MaxDeliveries {
		conn, err := amqp091.Dial(cfg.URL)
		require.NoError(t, err)
		ch, err := conn.Channel()
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			_, ok, err := ch.Get("PhotoFailed_recorder", false)
			require.NoError(t, err)
			return ok
		}, 5*time.Second, 20*time.Millisecond)
		require.NoError(t, conn.Close())
	}

	var calls atomic.Int32
	runRouter(t, cfg, bus.Recorder, func(context.Context, *event.PhotoFailed) error {
		calls.Add(1)
		return nil
	})
	dl := getDeadLetter(t, cfg.URL, bus.Recorder)
	require.Contains(t, dl.headers[bus.ReasonKey], "delivered 3 times")
	require.Zero(t, calls.Load(), "the crashing message is not handled a third time")
}
