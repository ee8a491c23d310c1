package app_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/services/recorder/internal/app"
)

// fakePurger answers each Purge with the next of its results (the last
// one repeats) and keeps the ages it was asked for.
type fakePurger struct {
	mu      sync.Mutex
	results []purgeResult
	calls   []time.Duration
}

type purgeResult struct {
	n   int64
	err error
}

func (f *fakePurger) Purge(_ context.Context, olderThan time.Duration) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, olderThan)
	r := purgeResult{}
	if len(f.results) > 0 {
		r = f.results[min(len(f.calls), len(f.results))-1]
	}
	return r.n, r.err
}

func (f *fakePurger) called() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.calls...)
}

// syncBuffer is a log destination safe for the Run goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestNewRetentionRejectsInvalidSettings(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.DiscardHandler)
	_, err := app.NewRetention(&fakePurger{}, -time.Hour, time.Hour, log)
	require.Error(t, err)
	_, err = app.NewRetention(&fakePurger{}, time.Hour, 0, log)
	require.Error(t, err)
	_, err = app.NewRetention(&fakePurger{}, 0, time.Hour, log)
	require.NoError(t, err, "0 keeps callbacks forever")
}

// TestRetentionPurgesAtStartAndPeriodically: the first purge runs at
// start, later ones every interval, with the retention as the age; a
// failure is logged and does not stop the next run.
func TestRetentionPurgesAtStartAndPeriodically(t *testing.T) {
	t.Parallel()
	store := &fakePurger{results: []purgeResult{{n: 3}, {n: 1, err: errors.New("connection refused")}, {n: 0}}}
	var logs syncBuffer
	r, err := app.NewRetention(store, 48*time.Hour, 20*time.Millisecond, slog.New(slog.NewTextHandler(&logs, nil)))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		require.GreaterOrEqual(c, len(store.called()), 3, "at start, then after each interval, failures included")
	}, 5*time.Second, 5*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	for _, age := range store.called() {
		require.Equal(t, 48*time.Hour, age)
	}
	out := logs.String()
	require.Contains(t, out, `level=INFO msg="callbacks purged" purged=3 retention=48h0m0s`)
	require.Contains(t, out, `level=WARN msg="callback purge failed"`)
	require.Contains(t, out, "connection refused")
	require.NotContains(t, out, "purged=0", "nothing logged when nothing was purged")
}

// TestRetentionZeroKeepsForever: with CALLBACK_RETENTION=0 nothing is
// ever purged, and Run returns at once (the errgroup beside it goes on).
func TestRetentionZeroKeepsForever(t *testing.T) {
	t.Parallel()
	store := &fakePurger{results: []purgeResult{{n: 5}}}
	r, err := app.NewRetention(store, 0, time.Millisecond, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.NoError(t, r.Run(t.Context()))
	n, err := r.Purge(t.Context())
	require.NoError(t, err)
	require.Zero(t, n)
	require.Empty(t, store.called())
}
