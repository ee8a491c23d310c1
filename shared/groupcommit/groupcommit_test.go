package groupcommit_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/shared/groupcommit"
)

type item struct {
	n     int
	batch int // set by Run: the batch it ran in
}

// recorder is a Run that records its batches and, while hold is set,
// blocks the batch it is in until release.
type recorder struct {
	mu      sync.Mutex
	batches [][]int
	hold    chan struct{}
}

func (r *recorder) run(_ context.Context, batch []*item) {
	r.mu.Lock()
	hold := r.hold
	r.hold = nil
	var ns []int
	for _, it := range batch {
		ns = append(ns, it.n)
		it.batch = len(r.batches)
	}
	r.batches = append(r.batches, ns)
	r.mu.Unlock()
	if hold != nil {
		<-hold
	}
}

func (r *recorder) got() [][]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.batches
}

// startHeld starts a Do of item 0 whose batch blocks until the returned
// release, and waits until it runs.
func startHeld(t *testing.T, q *groupcommit.Queue[*item], r *recorder) (release func(), done <-chan error) {
	t.Helper()
	hold := make(chan struct{})
	r.hold = hold
	errc := make(chan error, 1)
	go func() { errc <- q.Do(context.Background(), &item{n: 0}) }()
	require.Eventually(t, func() bool { return q.Batches() == 1 }, 5*time.Second, time.Millisecond)
	return func() { close(hold) }, errc
}

func TestLoneCallRunsAtOnce(t *testing.T) {
	r := &recorder{}
	q := &groupcommit.Queue[*item]{Run: r.run}
	for i := range 3 {
		it := &item{n: i}
		require.NoError(t, q.Do(context.Background(), it))
		require.Equal(t, i, it.batch)
	}
	require.Equal(t, [][]int{{0}, {1}, {2}}, r.got())
}

func TestCallsWaitingShareTheNextBatch(t *testing.T) {
	r := &recorder{}
	q := &groupcommit.Queue[*item]{Run: r.run}
	release, first := startHeld(t, q, r)
	var wg sync.WaitGroup
	for i := 1; i <= 10; i++ {
		wg.Go(func() { assert.NoError(t, q.Do(context.Background(), &item{n: i})) })
		require.Eventually(t, func() bool { return q.Waiting() == i }, 5*time.Second, time.Millisecond)
	}
	release()
	require.NoError(t, <-first)
	wg.Wait()
	require.Equal(t, [][]int{{0}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}}, r.got())
}

// Items that do not fit wait for a later batch, in their order.
func TestItemsThatDoNotFitWait(t *testing.T) {
	r := &recorder{}
	q := &groupcommit.Queue[*item]{Run: r.run, Select: func(waiting []*item) []bool {
		pick := make([]bool, len(waiting)) // two at most, of the oldest's parity
		for i, n := 0, 0; i < len(waiting) && n < 2; i++ {
			if waiting[i].n%2 == waiting[0].n%2 {
				pick[i] = true
				n++
			}
		}
		return pick
	}}
	release, first := startHeld(t, q, r)
	var wg sync.WaitGroup
	for i := 1; i <= 5; i++ {
		wg.Go(func() { assert.NoError(t, q.Do(context.Background(), &item{n: i})) })
		require.Eventually(t, func() bool { return q.Waiting() == i }, 5*time.Second, time.Millisecond)
	}
	release()
	require.NoError(t, <-first)
	wg.Wait()
	require.Equal(t, [][]int{{0}, {1, 3}, {2, 4}, {5}}, r.got())
}

func TestPanicAnswersEveryCallOfItsBatch(t *testing.T) {
	var calls atomic.Int32
	hold := make(chan struct{})
	q := &groupcommit.Queue[*item]{}
	q.Run = func(_ context.Context, batch []*item) {
		if calls.Add(1) == 1 {
			<-hold
			return
		}
		for _, it := range batch {
			if it.n == 2 {
				panic("bad item")
			}
		}
	}
	first := make(chan error, 1)
	go func() { first <- q.Do(context.Background(), &item{n: 0}) }()
	require.Eventually(t, func() bool { return q.Batches() == 1 }, 5*time.Second, time.Millisecond)
	errs := make(chan error, 2)
	for i := 1; i <= 2; i++ {
		go func() { errs <- q.Do(context.Background(), &item{n: i}) }()
	}
	require.Eventually(t, func() bool { return q.Waiting() == 2 }, 5*time.Second, time.Millisecond)
	close(hold)
	require.NoError(t, <-first)
	for range 2 {
		require.ErrorContains(t, <-errs, "panic: bad item")
	}
	require.NoError(t, q.Do(context.Background(), &item{n: 3}), "the queue goes on")
}

// A panic in Select answers the oldest caller with it; the queue goes on.
func TestPanicInSelect(t *testing.T) {
	r := &recorder{}
	q := &groupcommit.Queue[*item]{Run: r.run, Select: func(waiting []*item) []bool {
		if waiting[0].n == 1 {
			panic("bad select")
		}
		return nil
	}}
	require.ErrorContains(t, q.Do(context.Background(), &item{n: 1}), "panic: bad select")
	require.NoError(t, q.Do(context.Background(), &item{n: 2}))
	require.Equal(t, [][]int{{2}}, r.got(), "the batch whose Select panicked did not run")
}

// The batch's context outlives a leader whose request ended, and ends by
// Timeout.
func TestBatchContext(t *testing.T) {
	var got error
	var deadline time.Duration
	q := &groupcommit.Queue[*item]{Timeout: time.Hour, Run: func(ctx context.Context, _ []*item) {
		got = ctx.Err()
		d, _ := ctx.Deadline()
		deadline = time.Until(d)
	}}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, q.Do(ctx, &item{}))
	require.NoError(t, got)
	require.Greater(t, deadline, 59*time.Minute)
}

// Stop ends a running batch early, one that started before it ended as
// well as one that starts after; without it the batch would run on.
func TestStopCancelsTheRunningBatch(t *testing.T) {
	stop, halt := context.WithCancel(context.Background())
	started := make(chan struct{}, 1)
	q := &groupcommit.Queue[*item]{Timeout: time.Hour, Stop: stop, Run: func(ctx context.Context, _ []*item) {
		started <- struct{}{}
		<-ctx.Done()
	}}
	done := make(chan error, 1)
	go func() { done <- q.Do(context.Background(), &item{}) }()
	<-started
	select {
	case <-done:
		t.Fatal("the batch ended before Stop did")
	case <-time.After(50 * time.Millisecond):
	}
	halt()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not cancel the running batch")
	}
	go func() { done <- q.Do(context.Background(), &item{}) }()
	<-started
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("a batch started after Stop ended ran on")
	}
}

// Many callers at once: every item runs exactly once, batches respect
// Max, and under contention batches hold several items.
func TestManyCallers(t *testing.T) {
	var mu sync.Mutex
	ran := map[int]int{}
	largest := 0
	q := &groupcommit.Queue[*item]{
		Max: 16,
		Run: func(_ context.Context, batch []*item) {
			time.Sleep(100 * time.Microsecond) // a round trip
			mu.Lock()
			defer mu.Unlock()
			largest = max(largest, len(batch))
			for _, it := range batch {
				ran[it.n]++
			}
		},
	}
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Go(func() {
			for i := range 100 {
				assert.NoError(t, q.Do(context.Background(), &item{n: g*100 + i}))
			}
		})
	}
	wg.Wait()
	require.Len(t, ran, 3200)
	for n, c := range ran {
		require.Equal(t, 1, c, "item %d", n)
	}
	require.LessOrEqual(t, largest, 16)
	require.Greater(t, largest, 1)
	require.Less(t, q.Batches(), 3200)
}
