package deadletter_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/shared/bus"
	"github.com/photopipe/photopipe/shared/deadletter"
	"github.com/photopipe/photopipe/shared/envconfig"
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

func depth(t *testing.T, ch *amqp091.Channel, queue string) int {
	t.Helper()
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	require.NoError(t, err)
	return q.Messages
}

// The broker's own dead letters are listed with what happened and where
// they belong, and replayed there: an event published while its queue was
// gone, and one pushed out of a full queue. A replay to a queue that does
// not exist fails and keeps the message (the default exchange would drop
// it and still confirm it).
func TestBrokerDeadLettersAreListedAndReplayed(t *testing.T) {
	cfg := bus.LoadConfig(envconfig.New(func(string) string { return "" }), 1)
	cfg.URL = testenv.RabbitMQ(t)
	ctx := context.Background()
	require.NoError(t, cfg.Declare(ctx, nil))
	ch := testenv.AMQPChannel(t, cfg.URL)
	admin := deadletter.New(cfg)
	queue := cfg.PhotoProcessorQueue

	_, err := ch.QueueDelete(queue, false, false, false)
	require.NoError(t, err)
	publishRequested(t, cfg, "unroutable")
	var entries []deadletter.Entry
	require.Eventually(t, func() bool {
		_, entries, err = admin.List(ctx, bus.Downloader, 0, 10, 10)
		require.NoError(t, err)
		return len(entries) == 1
	}, 10*time.Second, 50*time.Millisecond)
	e := entries[0]
	require.Equal(t, "unroutable", e.PhotoID)
	require.Equal(t, queue, e.Queue)
	require.Equal(t, "PhotoRequested", e.Event)
	require.Contains(t, e.Reason, "unroutable: no queue was bound to exchange PhotoRequested")
	require.WithinDuration(t, time.Now(), e.DeadLetteredAt, time.Minute, "when it was published")

	res, err := admin.Replay(ctx, bus.Downloader, deadletter.Selection{All: true})
	require.NoError(t, err)
	require.Zero(t, res.Replayed)
	require.Len(t, res.Failed, 1)
	require.Contains(t, res.Failed[0], "queue photo-processor does not exist")
	require.Eventually(t, func() bool { return depth(t, ch, bus.DeadLetterTopic(bus.Downloader)) == 1 }, 10*time.Second, 50*time.Millisecond,
		"kept in the dead-letter queue")

	require.NoError(t, cfg.Declare(ctx, nil))
	clearPolicy := testenv.QueuePolicy(t, cfg.URL, queue, "limit", `{"max-length":1}`)
	publishRequested(t, cfg, "first")
	publishRequested(t, cfg, "second")
	require.Eventually(t, func() bool {
		_, entries, err = admin.List(ctx, bus.Downloader, 0, 10, 10)
		require.NoError(t, err)
		return len(entries) == 2
	}, 10*time.Second, 50*time.Millisecond)
	var full deadletter.Entry
	for _, e := range entries {
		if e.PhotoID == "first" {
			full = e
		}
	}
	require.Equal(t, queue, full.Queue)
	require.Equal(t, "dropped by the broker from queue photo-processor: the queue was full (a max-length limit)", full.Reason)
	require.WithinDuration(t, time.Now(), full.DeadLetteredAt, time.Minute)

	clearPolicy()
	_, err = ch.QueuePurge(queue, false)
	require.NoError(t, err)
	res, err = admin.Replay(ctx, bus.Downloader, deadletter.Selection{PhotoIDs: []string{"unroutable", "first"}})
	require.NoError(t, err)
	require.Equal(t, 2, res.Replayed, "%v", res.Failed)
	require.Eventually(t, func() bool { return depth(t, ch, queue) == 2 }, 10*time.Second, 50*time.Millisecond)
}

// A replay right after a listing finds every message: the listing's
// session gives its messages back before it ends (a quorum queue takes
// them back asynchronously after the channel closes, and the next
// session's count missed them: "replayed 0" with 4 waiting).
func TestReplayRightAfterListFindsEverything(t *testing.T) {
	cfg := bus.LoadConfig(envconfig.New(func(string) string { return "" }), 1)
	cfg.URL = testenv.RabbitMQ(t)
	ctx := context.Background()
	require.NoError(t, cfg.Declare(ctx, nil))
	ch := testenv.AMQPChannel(t, cfg.URL)
	require.NoError(t, ch.Confirm(false))
	admin := deadletter.New(cfg)
	dlq := bus.DeadLetterTopic(bus.Downloader)
	const n = 20
	for round := range 10 {
		for i := range n {
			conf, err := ch.PublishWithDeferredConfirmWithContext(ctx, dlq, "", false, false, amqp091.Publishing{
				Headers: amqp091.Table{bus.QueueKey: cfg.PhotoProcessorQueue, bus.ReasonKey: "test"},
				Body:    []byte(fmt.Sprintf(`{"photo_id":"p%d"}`, i)), DeliveryMode: amqp091.Persistent,
			})
			require.NoError(t, err)
			require.True(t, conf.Wait(), "message %d", i)
		}
		require.Eventually(t, func() bool { return depth(t, ch, dlq) == n }, 10*time.Second, 20*time.Millisecond)
		sum, _, err := admin.List(ctx, bus.Downloader, 0, 5, 10)
		require.NoError(t, err)
		require.Equal(t, n, sum.Count)
		require.Equal(t, n, depth(t, ch, dlq), "round %d: all back when List returns", round)
		res, err := admin.Replay(ctx, bus.Downloader, deadletter.Selection{PhotoIDs: []string{"p0"}})
		require.NoError(t, err)
		require.Equal(t, 1, res.Replayed, "round %d: %v", round, res.Failed)
		require.Equal(t, n-1, depth(t, ch, dlq), "round %d: the rest back when Replay returns", round)
		res, err = admin.Replay(ctx, bus.Downloader, deadletter.Selection{All: true})
		require.NoError(t, err)
		require.Equal(t, n-1, res.Replayed, "round %d: %v", round, res.Failed)
		_, err = ch.QueuePurge(cfg.PhotoProcessorQueue, false)
		require.NoError(t, err)
	}
}
