package app

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/shared/event"
)

func TestSimulatedGPUTime(t *testing.T) {
	t.Parallel()
	f := newFixture(t, testLimits)
	var waits []time.Duration
	f.r.WithSimulatedGPU(func(_ context.Context, d time.Duration) error {
		waits = append(waits, d)
		return nil
	})
	for i := range 20 {
		e := f.put(t, "11111111-1111-1111-1111-11111111111"+string(rune('a'+i%6)), jpegOf(t, 40, 30))
		require.NoError(t, f.r.Handle(context.Background(), e))
	}
	require.Len(t, waits, 20, "one wait per image")
	for _, d := range waits {
		require.GreaterOrEqual(t, d, 100*time.Millisecond)
		require.LessOrEqual(t, d, 400*time.Millisecond)
	}

	// A shutdown interrupts the wait; the message is returned, not failed.
	f = newFixture(t, testLimits)
	f.r.WithSimulatedGPU(Sleep)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := f.r.Handle(ctx, f.put(t, "22222222-2222-2222-2222-222222222222", jpegOf(t, 40, 30)))
	require.True(t, errors.Is(err, context.Canceled))
	_, isFailure := event.AsFailure(err)
	require.False(t, isFailure)
}

func TestNoSimulatedGPUTimeByDefault(t *testing.T) {
	t.Parallel()
	f := newFixture(t, testLimits)
	require.Nil(t, f.r.gpuSleep)
}
