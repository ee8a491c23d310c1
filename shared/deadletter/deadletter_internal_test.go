package deadletter

import (
	"context"
	"testing"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/shared/bus"
)

// A dead letter of a queue that earlier versions consumed is refused, not
// replayed into nothing (the default exchange drops a message for a
// missing queue and still confirms it).
func TestReplayRefusesObsoleteQueues(t *testing.T) {
	t.Parallel()
	for _, q := range bus.ObsoleteQueues {
		err := republish(context.Background(), nil, amqp091.Delivery{Body: []byte("{}")}, q)
		require.ErrorContains(t, err, "no longer consumed")
	}
	require.ErrorContains(t, republish(context.Background(), nil, amqp091.Delivery{}, ""), "which queue")
}
