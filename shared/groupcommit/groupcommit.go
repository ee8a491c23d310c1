// Package groupcommit runs the database work of concurrent callers in
// batches: the callers that come while one batch runs wait and go together
// in the next, so that under load many share one transaction (its round
// trips, statements and WAL flush), and a caller that comes alone runs at
// once. It has no goroutine and no timer of its own (but the
// one that cancels a running batch when Queue.Stop ends).
//
// One batch runs at a time, led by one of its own callers: the one that
// found the queue idle, or the oldest waiting, to which the leader of the
// previous batch hands over. Every leader runs one batch only, the one
// holding its own item, so a caller waits at most for the batch that was
// running when it came and for its own.
package groupcommit

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"time"
)

// Queue batches items of type T, usually pointers through which Run
// returns each caller's result. The zero Queue is not usable: set Run.
type Queue[T any] struct {
	// Run applies one batch, oldest item first. Its context is the
	// leader's without its cancellation (the batch serves other callers
	// too), bounded by Timeout.
	Run func(ctx context.Context, batch []T)
	// Select picks the next batch from the waiting items, oldest first:
	// it says for each whether it joins (the oldest always does). An item
	// left out waits for a later batch, keeping its place. nil: all join.
	Select func(waiting []T) []bool
	// Max bounds the items of one batch, after Select (0: no bound).
	Max int
	// Timeout bounds one batch (default one minute).
	Timeout time.Duration
	// Stop, when set, cancels the running batch when it ends, whatever
	// Timeout says: a stopping service that cannot wait any longer.
	Stop context.Context

	mu      sync.Mutex
	waiting []*entry[T]
	busy    bool // a leader is running a batch or about to
	batches int
}

type entry[T any] struct {
	item T
	err  error         // a panic in Run
	done chan struct{} // closed when the batch holding item has run
	lead chan struct{} // closed when this entry's caller is to run the next batch
}

// Do queues item and returns once a batch holding it has run. Its error is
// not nil only when Run panicked in that batch. Do does not return early
// when ctx ends: the item may be in a running batch, or its caller the next
// leader; Timeout bounds the wait.
func (q *Queue[T]) Do(ctx context.Context, item T) error {
	e := &entry[T]{item: item, done: make(chan struct{}), lead: make(chan struct{})}
	q.mu.Lock()
	q.waiting = append(q.waiting, e)
	leader := !q.busy
	q.busy = true
	q.mu.Unlock()
	if !leader {
		select {
		case <-e.done:
			return e.err
		case <-e.lead:
		}
	}
	q.runNext(ctx)
	<-e.done // a leader's entry is the oldest waiting: the batch held it
	return e.err
}

// Batches returns how many batches have run or are running.
func (q *Queue[T]) Batches() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.batches
}

// runNext takes the next batch, runs it, answers its callers and hands
// over to the oldest waiting caller.
func (q *Queue[T]) runNext(ctx context.Context) {
	batch, err := q.take()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("groupcommit: batch of %d failed: panic: %v\n%s", len(batch), p, debug.Stack())
		}
		for _, e := range batch {
			e.err = err
			close(e.done)
		}
		q.handOver()
	}()
	if err != nil {
		return
	}
	items := make([]T, len(batch))
	for i, e := range batch {
		items[i] = e.item
	}
	timeout := q.Timeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	if q.Stop != nil {
		defer context.AfterFunc(q.Stop, cancel)()
	}
	q.Run(bctx, items)
}

// take removes the next batch from the queue: the oldest entry and every
// later one that Select picks, up to Max. If Select panics, the batch is the oldest
// entry alone, answered with the panic instead of run.
func (q *Queue[T]) take() (batch []*entry[T], err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.batches++
	pick, err := q.pick()
	if err != nil {
		batch, q.waiting = q.waiting[:1:1], q.waiting[1:]
		return batch, err
	}
	var rest []*entry[T]
	for i, e := range q.waiting {
		full := q.Max > 0 && len(batch) >= q.Max
		if i == 0 || !full && (pick == nil || (i < len(pick) && pick[i])) {
			batch = append(batch, e)
		} else {
			rest = append(rest, e)
		}
	}
	q.waiting = rest
	return batch, nil
}

// pick calls Select on the waiting items (q.mu held).
func (q *Queue[T]) pick() (pick []bool, err error) {
	if q.Select == nil {
		return nil, nil
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("groupcommit: select failed: panic: %v\n%s", p, debug.Stack())
		}
	}()
	items := make([]T, len(q.waiting))
	for i, e := range q.waiting {
		items[i] = e.item
	}
	return q.Select(items), nil
}

// handOver makes the oldest waiting caller the next leader, or marks the
// queue idle.
func (q *Queue[T]) handOver() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.waiting) == 0 {
		q.busy = false
		return
	}
	close(q.waiting[0].lead)
}

// Waiting returns how many items wait for a batch (not those running).
func (q *Queue[T]) Waiting() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.waiting)
}
