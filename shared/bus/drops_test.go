package bus_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os/exec"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/shared/bus"
	"github.com/photopipe/photopipe/shared/event"
	"github.com/photopipe/photopipe/shared/testenv"
)

func publishRequested(t *testing.T, cfg bus.Config, photoID string) {
	t.Helper()
	pub, err := cfg.NewPublisher(watermill.NopLogger{})
	require.NoError(t, err)
	defer pub.Close()
	events, err := bus.NewEventBus(pub, watermill.NopLogger{})
	require.NoError(t, err)
	require.NoError(t, events.Publish(context.Background(), &event.PhotoRequested{Header: event.NewHeader(photoID, 1)}))
}

// getOne waits for a message in queue and takes it.
func getOne(t *testing.T, ch *amqp091.Channel, queue string) amqp091.Delivery {
	t.Helper()
	var got amqp091.Delivery
	require.Eventually(t, func() bool {
		d, ok, err := ch.Get(queue, true)
		require.NoError(t, err)
		got = d
		return ok
	}, 10*time.Second, 20*time.Millisecond, "a message in %s", queue)
	return got
}

// What the broker itself would drop ends in the consuming service's
// dead-letter queue: an event published while its queue is gone (deleted
// by hand), and a message pushed out of a queue that a max-length policy
// limits. Before, both were lost and their photos stayed processing.
func TestBrokerDropsEndInTheDeadLetterQueue(t *testing.T) {
	cfg := testConfig(t)
	ctx := context.Background()
	require.NoError(t, cfg.Declare(ctx, nil))
	ch := testenv.AMQPChannel(t, cfg.URL)
	dlq := bus.DeadLetterTopic(bus.Downloader)

	_, err := ch.QueueDelete(cfg.PhotoProcessorQueue, false, false, false)
	require.NoError(t, err)
	publishRequested(t, cfg, "unroutable")
	d := getOne(t, ch, dlq)
	require.Contains(t, string(d.Body), `"photo_id":"unroutable"`)
	require.Equal(t, event.TopicPhotoRequested, d.Exchange, "the exchange it was published to says which queue it was meant for")

	require.NoError(t, cfg.Declare(ctx, nil), "the queue is back")
	testenv.QueuePolicy(t, cfg.URL, cfg.PhotoProcessorQueue, "limit", `{"max-length":1}`)
	publishRequested(t, cfg, "first")
	publishRequested(t, cfg, "second")
	d = getOne(t, ch, dlq)
	require.Contains(t, string(d.Body), `"photo_id":"first"`, "the oldest is pushed out")
	require.Equal(t, "maxlen", d.Headers["x-first-death-reason"])
	require.Equal(t, cfg.PhotoProcessorQueue, d.Headers["x-first-death-queue"])
}

// Exchanges and queues that an earlier version declared without those
// arguments stay as they are, with one warning that gives the policies to
// apply (they are valid rabbitmqctl commands), and publishing and consuming
// go on (RabbitMQ refuses a declaration with other arguments than the
// object has). Deleted while a consumer runs, such a queue comes back with
// today's arguments.
func TestDeclareKeepsAnEarlierVersionsQueues(t *testing.T) {
	cfg := testConfig(t)
	ctx := context.Background()
	ch := testenv.AMQPChannel(t, cfg.URL)
	require.NoError(t, ch.ExchangeDeclare(event.TopicPhotoRequested, "fanout", true, false, false, false, nil))
	_, err := ch.QueueDeclare(cfg.PhotoProcessorQueue, true, false, false, false, amqp091.Table{"x-queue-type": cfg.QueueType})
	require.NoError(t, err)

	var logs bytes.Buffer
	require.NoError(t, cfg.Declare(ctx, slog.New(slog.NewJSONHandler(&logs, nil))))
	var warning struct {
		Level    string
		Objects  []string
		Policies []string
	}
	require.NoError(t, json.Unmarshal(logs.Bytes(), &warning), "one line: %s", logs.String())
	require.Equal(t, "WARN", warning.Level)
	require.Equal(t, []string{"exchange " + event.TopicPhotoRequested, "queue " + cfg.PhotoProcessorQueue}, warning.Objects)
	require.Len(t, warning.Policies, 2)
	for _, cmd := range warning.Policies {
		out, err := exec.Command("sh", "-c", cmd).CombinedOutput()
		require.NoError(t, err, "%s: %s", cmd, out)
	}

	sub, err := cfg.NewSubscriber(bus.Downloader, watermill.NopLogger{})
	require.NoError(t, err)
	defer sub.Close()
	subCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	msgs, err := sub.Subscribe(subCtx, event.TopicPhotoRequested)
	require.NoError(t, err)
	receive := func(photoID string) {
		t.Helper()
		publishRequested(t, cfg, photoID)
		select {
		case m := <-msgs:
			require.Contains(t, string(m.Payload), `"photo_id":"`+photoID+`"`)
			m.Ack()
		case <-time.After(10 * time.Second):
			t.Fatal("nothing consumed")
		}
	}
	receive("p")

	_, err = ch.QueueDelete(cfg.PhotoProcessorQueue, false, false, false)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return queueExists(t, cfg.URL, cfg.PhotoProcessorQueue) }, 10*time.Second, 20*time.Millisecond,
		"the consumer declares its queue again")
	check := testenv.AMQPChannel(t, cfg.URL)
	_, err = check.QueueDeclare(cfg.PhotoProcessorQueue, true, false, false, false, amqp091.Table{
		"x-queue-type": cfg.QueueType, "x-dead-letter-exchange": bus.DeadLetterTopic(bus.Downloader),
	})
	require.NoError(t, err, "with today's arguments")
	require.Eventually(t, func() bool {
		q, ok := inspectQueue(t, cfg.URL, cfg.PhotoProcessorQueue)
		return ok && q.Consumers == 1
	}, 10*time.Second, 20*time.Millisecond, "and consumes it")
	receive("q")
}

// A queue deleted under its consumers: they subscribe again, which
// declares it again, and handle what comes next. Before, each worker was
// handed an empty message (Watermill read the cancelled consumer's closed
// delivery channel), retried it and dead-lettered it as an event of no type.
func TestConsumersOutliveTheirQueue(t *testing.T) {
	cfg := testConfig(t)
	got := make(chan string, 10)
	events := runRouter(t, cfg, bus.Recorder, func(_ context.Context, e *event.PhotoFailed) error {
		got <- e.PhotoID
		return nil
	})
	queue := cfg.QueueName(event.TopicPhotoFailed, bus.Recorder)
	ch := testenv.AMQPChannel(t, cfg.URL)
	_, err := ch.QueueDelete(queue, false, false, false)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		q, ok := inspectQueue(t, cfg.URL, queue)
		return ok && q.Consumers == 2
	}, 10*time.Second, 20*time.Millisecond, "both workers consume the queue again")
	require.NoError(t, events.Publish(context.Background(), &event.PhotoFailed{Header: event.NewHeader("after", 1)}))
	select {
	case id := <-got:
		require.Equal(t, "after", id)
	case <-time.After(10 * time.Second):
		t.Fatal("not handled")
	}
	time.Sleep(200 * time.Millisecond) // a dead letter would be there by now (retries take 30 ms)
	require.Zero(t, queueDepth(t, cfg.URL, bus.DeadLetterTopic(bus.Recorder)), "nothing dead-lettered")
}
