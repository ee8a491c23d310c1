package worker

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/stretchr/testify/require"
)

// A router whose every subscription ends while the service is meant to
// run (its subscriber closed under it) stops by itself: runRouter reports
// that as an error, so the service exits non-zero and is restarted,
// instead of exiting 0 as after a stop.
func TestRouterThatStopsByItselfIsAnError(t *testing.T) {
	sub := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	require.NoError(t, err)
	router.AddConsumerHandler("test", "topic", sub, func(*message.Message) error { return nil })
	done := make(chan error, 1)
	go func() {
		done <- runRouter(context.Background(), router, sub, Options{
			ShutdownTimeout: time.Minute, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Abandon: func() {},
		})
	}()
	select {
	case <-router.Running():
	case <-time.After(10 * time.Second):
		t.Fatal("the router did not start")
	}
	require.NoError(t, sub.Close())
	select {
	case err := <-done:
		require.ErrorContains(t, err, "stopped by itself")
	case <-time.After(10 * time.Second):
		t.Fatal("runRouter did not return once every subscription had ended")
	}
}
