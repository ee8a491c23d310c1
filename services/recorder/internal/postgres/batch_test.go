package postgres

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/photopipe/photopipe/shared/database"
	"github.com/photopipe/photopipe/shared/testenv"
)

// MustOpenDB opens a migrated database of the test's own (also for the
// package's external tests).
func MustOpenDB(t *testing.T) *gorm.DB {
	t.Helper()
	cfg := database.Config{URL: testenv.Postgres(t), MaxOpenConns: 8, MaxIdleConns: 4, ConnectTimeout: 30e9, Migrate: true}
	db, err := database.Open(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = database.Close(db) })
	return db
}

// txOp is an op that records the transaction it ran in, each time it ran.
type txOp struct {
	op
	mu  sync.Mutex
	txs []int64
}

func newTxOp(photo string, fail bool, before func()) *txOp {
	o := &txOp{}
	o.photo = photo
	o.run = func(tx *gorm.DB) (final, error) {
		if before != nil {
			before()
		}
		var id int64
		if err := tx.Raw("SELECT txid_current()").Scan(&id).Error; err != nil {
			return final{}, err
		}
		o.mu.Lock()
		o.txs = append(o.txs, id)
		o.mu.Unlock()
		if fail {
			return final{}, tx.Exec("SELECT 1/0").Error
		}
		return final{applied: true}, nil
	}
	return o
}

// waitPending waits until n ops wait behind the running batch.
func waitPending(t *testing.T, b *batcher, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return b.q.Waiting() == n }, 10*time.Second, time.Millisecond)
}

func TestBatcherGroupsWaitingOpsAndSeparatesErrors(t *testing.T) {
	db := MustOpenDB(t)
	b := newBatcher(db, 64)
	ctx := context.Background()

	release := make(chan struct{})
	first := newTxOp("0", false, func() { <-release })
	ops := []*txOp{ // in photo order: the first runs before the failing one
		newTxOp("a", false, nil),
		newTxOp("b", true, nil),
		newTxOp("c", false, nil),
	}
	type result struct {
		f   final
		err error
	}
	results := make([]chan result, len(ops)+1)
	for i := range results {
		results[i] = make(chan result, 1)
	}
	go func() { f, err := b.do(ctx, &first.op); results[0] <- result{f, err} }()
	require.Eventually(t, func() bool { return b.q.Batches() == 1 && b.q.Waiting() == 0 }, 10*time.Second, time.Millisecond)
	for i, o := range ops {
		go func() { f, err := b.do(ctx, &o.op); results[i+1] <- result{f, err} }()
		waitPending(t, b, i+1)
	}
	close(release)

	r := <-results[0]
	require.NoError(t, r.err)
	require.True(t, r.f.applied)
	for i, o := range ops {
		r := <-results[i+1]
		if i == 1 {
			require.Error(t, r.err, "the failing op gets its error")
			require.False(t, r.f.applied)
			continue
		}
		require.NoError(t, r.err, "the others are applied again on their own")
		require.True(t, r.f.applied)
		require.Len(t, o.txs, map[int]int{0: 2, 2: 1}[i], "once in the failed batch (up to the failure), once alone")
	}
	require.Len(t, first.txs, 1)
	require.Equal(t, ops[0].txs[0], ops[1].txs[0], "waiting ops share one transaction")
	require.NotEqual(t, first.txs[0], ops[0].txs[0], "the running batch did not wait for them")
	require.NotEqual(t, ops[0].txs[1], ops[2].txs[0], "after a failure each op runs alone")
	require.NotEqual(t, ops[1].txs[1], ops[2].txs[0])

	require.Zero(t, b.q.Waiting(), "nothing left waiting")
	require.Equal(t, int64(1), b.failed.Load())
}

func TestBatcherOrderAndLimit(t *testing.T) {
	db := MustOpenDB(t)
	b := newBatcher(db, 3)
	ctx := context.Background()

	release := make(chan struct{})
	first := newTxOp(uuid.NewString(), false, func() { <-release })
	go func() { _, _ = b.do(ctx, &first.op) }()
	require.Eventually(t, func() bool { return b.q.Batches() == 1 && b.q.Waiting() == 0 }, 10*time.Second, time.Millisecond)

	// Five ops, two of one photo: the first three to arrive make a
	// batch (in photo order, one photo's ops in arrival order), the
	// other two the next.
	var mu sync.Mutex
	var order []string
	photos := []string{"c", "a", "c", "b", "a"}
	var wg sync.WaitGroup
	txs := make([]int64, len(photos))
	for i, p := range photos {
		o := &op{photo: p}
		o.run = func(tx *gorm.DB) (final, error) {
			mu.Lock()
			order = append(order, p+string(rune('0'+i)))
			mu.Unlock()
			return final{applied: true}, tx.Raw("SELECT txid_current()").Scan(&txs[i]).Error
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := b.do(ctx, o)
			if err != nil {
				t.Error(err)
			}
		}()
		waitPending(t, b, i+1)
	}
	close(release)
	wg.Wait()
	require.Equal(t, []string{"a1", "c0", "c2", "a4", "b3"}, order)
	require.Equal(t, txs[0], txs[1])
	require.Equal(t, txs[0], txs[2])
	require.Equal(t, txs[3], txs[4])
	require.NotEqual(t, txs[0], txs[3])
}

func TestBatcherIgnoresCallerCancellation(t *testing.T) {
	// The caller's op shares its transaction with others': a cancelled
	// caller neither aborts it nor leaves the batcher stuck.
	db := MustOpenDB(t)
	b := newBatcher(db, 8)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	o := newTxOp(uuid.NewString(), false, nil)
	f, err := b.do(ctx, &o.op)
	require.NoError(t, err)
	require.True(t, f.applied)
	o2 := newTxOp(uuid.NewString(), false, nil)
	f, err = b.do(context.Background(), &o2.op)
	require.NoError(t, err)
	require.True(t, f.applied)
}

func TestBatcherPanic(t *testing.T) {
	// A panic in a batch answers its callers with an error (nothing of it
	// committed) instead of stalling the queue.
	db := MustOpenDB(t)
	b := newBatcher(db, 8)
	o := &op{photo: "a", run: func(*gorm.DB) (final, error) { panic("boom") }}
	_, err := b.do(context.Background(), o)
	require.ErrorContains(t, err, "boom")
	o2 := newTxOp("b", false, nil)
	f, err := b.do(context.Background(), &o2.op)
	require.NoError(t, err)
	require.True(t, f.applied)
}
