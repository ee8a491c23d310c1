package bus

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/shared/envconfig"
	"github.com/photopipe/photopipe/shared/event"
	"github.com/photopipe/photopipe/shared/testenv"
)

// A declaration that the broker refuses (here: the queue exists as a
// classic queue, the services want quorum) is tried once for all the
// workers that resubscribe at once and once a second after that, not once
// per worker every 100 ms, each with a connection of its own.
func TestTopologyDeclaresOncePerObjectAtATime(t *testing.T) {
	cfg := LoadConfig(envconfig.New(func(string) string { return "" }), 1)
	cfg.URL = testenv.RabbitMQ(t)
	ch := testenv.AMQPChannel(t, cfg.URL)
	_, err := ch.QueueDeclare(cfg.PhotoProcessorQueue, true, false, false, false, amqp091.Table{"x-queue-type": QueueClassic})
	require.NoError(t, err)

	topo := newTopology(cfg)
	var dials atomic.Int32
	dial := topo.dial
	topo.dial = func() (*amqp091.Connection, error) {
		dials.Add(1)
		return dial()
	}
	params := amqp.BuildTopologyParams{Topic: event.TopicPhotoRequested, QueueName: cfg.PhotoProcessorQueue, ExchangeName: event.TopicPhotoRequested}
	var wg sync.WaitGroup
	for range 16 { // the workers, resubscribing together
		wg.Go(func() {
			assert.ErrorContains(t, topo.BuildTopology(nil, params, amqp.Config{}, nil), "x-queue-type")
		})
	}
	wg.Wait()
	require.EqualValues(t, 1, dials.Load())
	for range 3 { // Watermill's retries, within the second
		require.Error(t, topo.BuildTopology(nil, params, amqp.Config{}, nil))
	}
	require.EqualValues(t, 1, dials.Load())
	time.Sleep(declareReuse)
	require.Error(t, topo.BuildTopology(nil, params, amqp.Config{}, nil))
	require.EqualValues(t, 2, dials.Load(), "tried again after a second")
}
