package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/shared/event"
	"github.com/photopipe/photopipe/shared/rendition"
	"github.com/photopipe/photopipe/shared/storage"
)

// blockingStore is a Store whose Put of a rendition waits until release
// is closed, and announces on entered that it is waiting.
type blockingStore struct {
	storage.Store
	entered chan<- string
	release <-chan struct{}
}

func (s blockingStore) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	s.entered <- key
	<-s.release
	return s.Store.Put(ctx, key, r)
}

func TestConcurrencyBoundsRendering(t *testing.T) {
	t.Parallel()
	const slots, photos = 2, 6
	f := newFixture(t, testLimits)
	var now, most atomic.Int32
	f.r.WithConcurrency(slots).WithSimulatedGPU(func(context.Context, time.Duration) error {
		n := now.Add(1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond) // let the others pile up
		now.Add(-1)
		return nil
	})
	var wg sync.WaitGroup
	errs := make(chan error, photos)
	for i := range photos {
		e := f.put(t, fmt.Sprintf("photo-%d", i), jpegOf(t, 40, 30))
		wg.Go(func() { errs <- f.r.Handle(context.Background(), e) })
	}
	wg.Wait()
	for range photos {
		require.NoError(t, <-errs)
	}
	require.Equal(t, int32(slots), most.Load(), "at most WORKERS photos render at once, and that many do")
	require.Len(t, f.pub.events, photos)
}

func TestConcurrencyFreesSlotWhileStoring(t *testing.T) {
	t.Parallel()
	f := newFixture(t, testLimits)
	entered := make(chan string)
	release := make(chan struct{})
	store := blockingStore{Store: f.store, entered: entered, release: release}
	r := New(store, f.pub, slog.New(slog.DiscardHandler), rendition.DefaultPresets(), testLimits).WithConcurrency(1)
	first, second := f.put(t, "first", jpegOf(t, 40, 30)), f.put(t, "second", jpegOf(t, 40, 30))
	errs := make(chan error, 2)
	go func() { errs <- r.Handle(context.Background(), first) }()
	require.Equal(t, "thumbnails/first/thumb.jpg", <-entered)
	// The first photo is storing; with its slot held, the second could not
	// render and reach Put.
	go func() { errs <- r.Handle(context.Background(), second) }()
	select {
	case key := <-entered:
		require.Equal(t, "thumbnails/second/thumb.jpg", key)
	case <-time.After(10 * time.Second):
		t.Fatal("the second photo did not render while the first was being stored")
	}
	close(release)
	require.NoError(t, <-errs)
	require.NoError(t, <-errs)
	require.Len(t, f.pub.events, 2)
}

func TestConcurrencyWaitEndsWithContext(t *testing.T) {
	t.Parallel()
	f := newFixture(t, testLimits)
	inGPU := make(chan struct{})
	done := make(chan struct{})
	f.r.WithConcurrency(1).WithSimulatedGPU(func(context.Context, time.Duration) error {
		close(inGPU)
		<-done
		return nil
	})
	holder, waiter := f.put(t, "holder", jpegOf(t, 40, 30)), f.put(t, "waiter", jpegOf(t, 40, 30))
	held := make(chan error, 1)
	go func() { held <- f.r.Handle(context.Background(), holder) }()
	<-inGPU
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := f.r.Handle(ctx, waiter)
	require.ErrorIs(t, err, context.DeadlineExceeded, "a shutdown returns the waiting message, it does not fail the photo")
	_, isFailure := event.AsFailure(err)
	require.False(t, isFailure)
	close(done)
	require.NoError(t, <-held)
	require.Len(t, f.pub.events, 1, "only the holder's ThumbnailCreated")
}

// prefetchingStore records the keys its Prefetch was asked for.
type prefetchingStore struct {
	storage.Store
	prefetched chan<- string
}

func (s prefetchingStore) Prefetch(_ context.Context, key string) { s.prefetched <- key }

func TestConcurrencyPrefetchesWhileWaiting(t *testing.T) {
	t.Parallel()
	f := newFixture(t, testLimits)
	prefetched := make(chan string, 2)
	r := New(prefetchingStore{Store: f.store, prefetched: prefetched}, f.pub, slog.New(slog.DiscardHandler),
		rendition.DefaultPresets(), testLimits).WithConcurrency(1)
	e := f.put(t, "waiter", jpegOf(t, 40, 30))
	e.Bytes = storage.UncachedMin                                // as large as the originals a store keeps out of memory
	require.NoError(t, r.slots.Acquire(context.Background(), 1)) // every slot taken
	done := make(chan error, 1)
	go func() { done <- r.Handle(context.Background(), e) }()
	select {
	case key := <-prefetched:
		require.Equal(t, e.OriginalKey, key, "the original is read ahead while the photo waits for a slot")
	case <-time.After(10 * time.Second):
		t.Fatal("no prefetch while waiting for a slot")
	}
	r.slots.Release(1)
	require.NoError(t, <-done)
	f.created(t, e)

	// A small original is not prefetched: it stays in memory anyway.
	small := f.put(t, "small", jpegOf(t, 40, 30))
	require.NoError(t, r.Handle(context.Background(), small))
	require.Empty(t, prefetched)
}
