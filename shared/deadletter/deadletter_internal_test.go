package deadletter

import (
	"context"
	"fmt"
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
		err := republish(context.Background(), nil, nil, amqp091.Delivery{Body: []byte("{}")}, q)
		require.ErrorContains(t, err, "no longer consumed")
	}
	require.ErrorContains(t, republish(context.Background(), nil, nil, amqp091.Delivery{}, ""), "which queue")
}

// TestReasonKind: the ids in a reason (photo ids, and the keys and URLs
// made of them) do not split one cause into as many reasons as photos.
func TestReasonKind(t *testing.T) {
	a := "store rendition thumbnails/0b4c7a52-6d0e-4a8e-9a43-2f3d2f1c9b11/thumb.jpg: not a directory"
	b := "store rendition thumbnails/5F0F3C1E-2B7E-4D8B-9C8E-1F2E3D4C5B6A/thumb.jpg: not a directory"
	require.Equal(t, "store rendition thumbnails/<id>/thumb.jpg: not a directory", reasonKind(a))
	require.Equal(t, reasonKind(a), reasonKind(b))
	require.Equal(t, "rejected by the broker", reasonKind("rejected by the broker"))
	full := "put originals/%s/a.jpg: open originals/%s/.tmp-%s-a.jpg: no space left on device"
	require.Equal(t, fmt.Sprintf(full, "<id>", "<id>", "<id>"),
		reasonKind(fmt.Sprintf(full, "0b4c7a52-6d0e-4a8e-9a43-2f3d2f1c9b11", "0b4c7a52-6d0e-4a8e-9a43-2f3d2f1c9b11", "8f3a9c0d1e2b4a5f")))
}
