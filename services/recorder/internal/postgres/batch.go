package postgres

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"gorm.io/gorm"

	"github.com/photopipe/photopipe/shared/groupcommit"
)

// batchTimeout bounds one batch transaction: the callers wait for it
// whatever their own contexts say, so a hung connection must not hold
// them forever.
const batchTimeout = time.Minute

// op is one event's change, run inside a transaction shared with other
// events'. run must only use tx; it reports whether the event moved its
// photo forward and what is left to do after the commit.
type op struct {
	photo string // the photo it changes: ops are applied in photo order
	run   func(tx *gorm.DB) (final, error)
	// kind, when set, can apply many ops of its kind in one statement
	// instead (each op's event in ev, its caller's context in ctx).
	kind *opKind
	ev   any
	ctx  context.Context

	// Set by the batcher.
	res final // valid once the batch ran
	err error
}

// opKind applies many ops of one kind, of distinct photos, in one
// statement (or a few, whatever their number), as if each were run on its
// own. It returns each op's result in order.
type opKind struct {
	runMany func(tx *gorm.DB, ops []*op) ([]final, error)
}

// batcher is group commit (shared/groupcommit): events handled at once
// are applied in one transaction, so N events cost one commit (one WAL
// flush) instead of N. A batch forms exactly while the previous one is in
// Postgres, and a lone event goes at once. Each caller returns only after
// the transaction holding its op committed (or failed), so the message is
// acknowledged after its change is durable.
type batcher struct {
	db *gorm.DB
	q  groupcommit.Queue[*op] // q.Max: RECORD_BATCH

	// failed counts batches whose transaction failed, so that their ops
	// ran again one by one; log (when set) is told each time.
	failed atomic.Int64
	log    *slog.Logger
}

func newBatcher(db *gorm.DB, max int) *batcher {
	b := &batcher{db: db}
	b.q.Run = b.apply
	b.q.Max = max
	b.q.Timeout = batchTimeout
	return b
}

// do applies o (in a batch) and returns its result once committed.
func (b *batcher) do(ctx context.Context, o *op) (final, error) {
	if err := b.q.Do(ctx, o); err != nil {
		return final{}, err // a panic in the batch
	}
	return o.res, o.err
}

// apply runs batch in one transaction. If that fails, every op is run
// again in a transaction of its own, so that an op's error (or a
// deadlock with another replica's batch) is reported to its own caller
// only.
func (b *batcher) apply(ctx context.Context, batch []*op) {
	// Photo order: two batches (of two replicas) lock the rows they share
	// in the same order, so they wait for each other instead of
	// deadlocking. One photo's ops stay in arrival order (the queue's).
	slices.SortStableFunc(batch, func(x, y *op) int { return cmp.Compare(x.photo, y.photo) })
	res := make([]final, len(batch))
	err := b.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		return runBatch(tx, batch, res)
	})
	if err == nil || len(batch) == 1 {
		for i, o := range batch {
			if err != nil {
				res[i] = final{}
			}
			o.res, o.err = res[i], err
		}
		return
	}
	b.failed.Add(1)
	if b.log != nil {
		b.log.WarnContext(ctx, "batch transaction failed, applying its events one by one",
			slog.Int("events", len(batch)), slog.String("error", err.Error()))
	}
	for _, o := range batch {
		var f final
		o.err = b.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			var err error
			f, err = o.run(tx)
			return err
		})
		if o.err == nil {
			o.res = f
		}
	}
}

// runBatch applies batch within tx, putting each op's result in res. The
// ops of a kind that can run many at once do, one per photo (a statement
// changes a row once); the rest, and a photo's further ops of that kind,
// run one by one after them, in batch order. The ops of a batch were all
// waiting at once, so any order is one they could have had alone.
func runBatch(tx *gorm.DB, batch []*op, res []final) error {
	done := make([]bool, len(batch))
	var kinds []*opKind
	byKind := map[*opKind][]int{}
	seen := map[*opKind]map[string]bool{}
	for i, o := range batch {
		if o.kind == nil || seen[o.kind][o.photo] {
			continue
		}
		if seen[o.kind] == nil {
			seen[o.kind] = map[string]bool{}
			kinds = append(kinds, o.kind)
		}
		seen[o.kind][o.photo] = true
		byKind[o.kind] = append(byKind[o.kind], i)
	}
	for _, k := range kinds {
		idx := byKind[k]
		if len(idx) < 2 {
			continue
		}
		ops := make([]*op, len(idx))
		for j, i := range idx {
			ops[j] = batch[i]
		}
		fs, err := k.runMany(tx, ops)
		if err != nil {
			return err
		}
		for j, i := range idx {
			res[i], done[i] = fs[j], true
		}
	}
	for i, o := range batch {
		if done[i] {
			continue
		}
		f, err := o.run(tx)
		if err != nil {
			return err
		}
		res[i] = f
	}
	return nil
}
