package app_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/services/recorder/internal/app"
	"github.com/photopipe/photopipe/shared/bus"
	"github.com/photopipe/photopipe/shared/database"
)

type fakeCallbacks struct {
	mu       sync.Mutex
	due      []app.Delivery
	recorded []app.AttemptResult
	released []string
}

func (f *fakeCallbacks) Release(_ context.Context, id string, attempt int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.released = append(f.released, fmt.Sprintf("%s/%d", id, attempt))
	return nil
}

func (f *fakeCallbacks) Claim(_ context.Context, limit int, _ time.Duration) ([]app.Delivery, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := min(limit, len(f.due))
	out := f.due[:n]
	f.due = f.due[n:]
	return out, nil
}

func (f *fakeCallbacks) Record(_ context.Context, r app.AttemptResult) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.recorded = append(f.recorded, r)
	return nil
}

type fakeSender map[string]struct {
	code int
	err  error
}

func (f fakeSender) Send(_ context.Context, d app.Delivery) (int, error) {
	r := f[d.URL]
	return r.code, r.err
}

func TestDispatcherOutcomes(t *testing.T) {
	t.Parallel()
	store := &fakeCallbacks{due: []app.Delivery{
		{ID: "ok", URL: "ok", Attempt: 1},
		{ID: "retry", URL: "500", Attempt: 2},
		{ID: "last", URL: "500", Attempt: 4},
		{ID: "refused", URL: "blocked", Attempt: 1},
	}}
	sender := fakeSender{
		"ok":      {code: 204},
		"500":     {code: 500, err: errors.New("receiver answered 500")},
		"blocked": {err: bus.Permanent(errors.New("address 10.0.0.1 is not allowed (private network)"))},
	}
	cfg := app.DispatchConfig{MaxAttempts: 4, BackoffMin: time.Second, BackoffMax: time.Minute, Workers: 8, PollInterval: time.Second, Lease: time.Minute}
	d, err := app.NewDispatcher(store, sender, cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	n, err := d.Round(t.Context())
	require.NoError(t, err)
	require.Equal(t, 4, n)

	byID := map[string]app.AttemptResult{}
	for _, r := range store.recorded {
		byID[r.CallbackID] = r
	}
	require.Equal(t, database.CallbackDelivered, byID["ok"].Status)
	require.Equal(t, 204, byID["ok"].StatusCode)
	require.Empty(t, byID["ok"].Error)

	retry := byID["retry"]
	require.Equal(t, database.CallbackPending, retry.Status)
	require.Equal(t, 500, retry.StatusCode)
	// Second failed try: BackoffMin doubled once, with jitter in [half, all].
	require.GreaterOrEqual(t, retry.RetryIn, time.Second)
	require.LessOrEqual(t, retry.RetryIn, 2*time.Second)

	require.Equal(t, database.CallbackFailed, byID["last"].Status)
	require.Contains(t, byID["last"].Error, "attempt 4 of 4, giving up")

	require.Equal(t, database.CallbackFailed, byID["refused"].Status, "a permanent error is not retried")
	require.Contains(t, byID["refused"].Error, "not allowed")
}

func TestDispatcherBackoffIsCapped(t *testing.T) {
	t.Parallel()
	for attempt := 1; attempt <= 40; attempt++ {
		store := &fakeCallbacks{due: []app.Delivery{{ID: "x", URL: "500", Attempt: attempt}}}
		cfg := app.DispatchConfig{MaxAttempts: 100, BackoffMin: time.Second, BackoffMax: 10 * time.Second, Workers: 1, PollInterval: time.Second, Lease: time.Minute}
		d, err := app.NewDispatcher(store, fakeSender{"500": {code: 500, err: errors.New("500")}}, cfg, slog.New(slog.DiscardHandler))
		require.NoError(t, err)
		_, err = d.Round(t.Context())
		require.NoError(t, err)
		want := min(time.Second<<min(attempt-1, 10), 10*time.Second)
		got := store.recorded[0].RetryIn
		require.GreaterOrEqual(t, got, want/2, "attempt %d", attempt)
		require.LessOrEqual(t, got, want, "attempt %d", attempt)
	}
}

func TestNewDispatcherRefusesBadConfig(t *testing.T) {
	t.Parallel()
	_, err := app.NewDispatcher(&fakeCallbacks{}, fakeSender{}, app.DispatchConfig{}, slog.New(slog.DiscardHandler))
	require.Error(t, err)
}

// blockingSender answers nothing until its try is cancelled.
type blockingSender struct{ started chan struct{} }

func (s blockingSender) Send(ctx context.Context, _ app.Delivery) (int, error) {
	s.started <- struct{}{}
	<-ctx.Done()
	return 0, fmt.Errorf("post: %w", ctx.Err())
}

// TestDispatcherReleasesTriesCutShortByShutdown: a try the recorder's own
// stop cuts short is given back, not recorded as the receiver's failure
// (which, as a last try, would give the callback up).
func TestDispatcherReleasesTriesCutShortByShutdown(t *testing.T) {
	t.Parallel()
	store := &fakeCallbacks{due: []app.Delivery{{ID: "last", URL: "slow", Attempt: 4}}}
	sender := blockingSender{started: make(chan struct{}, 1)}
	cfg := app.DispatchConfig{MaxAttempts: 4, BackoffMin: time.Second, BackoffMax: time.Minute, Workers: 8, PollInterval: time.Second, Lease: time.Minute}
	d, err := app.NewDispatcher(store, sender, cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-sender.started
		cancel()
	}()
	_, err = d.Round(ctx)
	require.NoError(t, err)
	require.Empty(t, store.recorded, "no try recorded")
	require.Equal(t, []string{"last/4"}, store.released)
}

// slowOrFast blocks the deliveries to "slow" until the test ends and
// answers the others at once.
type slowOrFast struct{ release chan struct{} }

func (s slowOrFast) Send(ctx context.Context, d app.Delivery) (int, error) {
	if d.URL == "slow" {
		select {
		case <-s.release:
		case <-ctx.Done():
		}
		return 0, errors.New("timed out")
	}
	return 204, nil
}

// TestDispatcherSlowReceiverHoldsOneSlot: a receiver that does not answer
// holds its slot, while the other slots go on delivering.
func TestDispatcherSlowReceiverHoldsOneSlot(t *testing.T) {
	t.Parallel()
	due := []app.Delivery{{ID: "slow", URL: "slow", Attempt: 1}}
	for i := range 20 {
		due = append(due, app.Delivery{ID: fmt.Sprint("fast", i), URL: "fast", Attempt: 1})
	}
	store := &fakeCallbacks{due: due}
	sender := slowOrFast{release: make(chan struct{})}
	cfg := app.DispatchConfig{MaxAttempts: 4, BackoffMin: time.Second, BackoffMax: time.Minute, Workers: 2, PollInterval: time.Hour, Lease: time.Minute}
	d, err := app.NewDispatcher(store, sender, cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan struct{})
	go func() {
		_ = d.Run(ctx)
		close(stopped)
	}()
	require.Eventually(t, func() bool {
		store.mu.Lock()
		defer store.mu.Unlock()
		return len(store.recorded) == 20
	}, 10*time.Second, 5*time.Millisecond, "the 20 others are delivered while the slow one hangs")
	store.mu.Lock()
	for _, r := range store.recorded {
		require.Equal(t, database.CallbackDelivered, r.Status, r.CallbackID)
	}
	store.mu.Unlock()
	close(sender.release)
	require.Eventually(t, func() bool {
		store.mu.Lock()
		defer store.mu.Unlock()
		return len(store.recorded) == 21
	}, 10*time.Second, 5*time.Millisecond)
	cancel()
	<-stopped
}
