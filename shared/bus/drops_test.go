package bus_test

import (
	"bytes"
	"context"
	"log/slog"
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
	uri, err := amqp091.ParseURI(cfg.URL)
	require.NoError(t, err)
	out, err := testenv.RabbitMQCtl("set_policy", "-p", uri.Vhost, "--apply-to", "queues", "limit", "^"+cfg.PhotoProcessorQueue+"$", `{"max-length":1}`)
	require.NoError(t, err, out)
	publishRequested(t, cfg, "first")
	publishRequested(t, cfg, "second")
	d = getOne(t, ch, dlq)
	require.Contains(t, string(d.Body), `"photo_id":"first"`, "the oldest is pushed out")
	require.Equal(t, "maxlen", d.Headers["x-first-death-reason"])
	require.Equal(t, cfg.PhotoProcessorQueue, d.Headers["x-first-death-queue"])
}

// Exchanges and queues that an earlier version declared without those
// arguments stay as they are, with a warning, and publishing and consuming
// go on (RabbitMQ refuses a declaration with other arguments than the
// object has).
func TestDeclareKeepsAnEarlierVersionsQueues(t *testing.T) {
	cfg := testConfig(t)
	ctx := context.Background()
	ch := testenv.AMQPChannel(t, cfg.URL)
	require.NoError(t, ch.ExchangeDeclare(event.TopicPhotoRequested, "fanout", true, false, false, false, nil))
	_, err := ch.QueueDeclare(cfg.PhotoProcessorQueue, true, false, false, false, amqp091.Table{"x-queue-type": cfg.QueueType})
	require.NoError(t, err)

	var logs bytes.Buffer
	require.NoError(t, cfg.Declare(ctx, slog.New(slog.NewTextHandler(&logs, nil))))
	require.Contains(t, logs.String(), "exchange="+event.TopicPhotoRequested)
	require.Contains(t, logs.String(), "queue="+cfg.PhotoProcessorQueue)
	require.Contains(t, logs.String(), "rabbitmqctl set_policy")

	sub, err := cfg.NewSubscriber(bus.Downloader, watermill.NopLogger{})
	require.NoError(t, err)
	defer sub.Close()
	subCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	msgs, err := sub.Subscribe(subCtx, event.TopicPhotoRequested)
	require.NoError(t, err)
	publishRequested(t, cfg, "p")
	select {
	case m := <-msgs:
		require.Contains(t, string(m.Payload), `"photo_id":"p"`)
		m.Ack()
	case <-time.After(10 * time.Second):
		t.Fatal("nothing consumed")
	}
}
