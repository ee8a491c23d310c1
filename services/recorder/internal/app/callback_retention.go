package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// CallbackPurger deletes final (delivered or failed) callbacks, with their
// attempts, that became final more than olderThan ago, and returns how
// many it deleted. It never deletes pending callbacks, an olderThan of 0
// deletes nothing, and replicas may purge at once.
type CallbackPurger interface {
	Purge(ctx context.Context, olderThan time.Duration) (int64, error)
}

// Retention purges delivered and failed callbacks once they are older
// than a retention (CALLBACK_RETENTION), so that the callbacks tables do
// not grow forever.
type Retention struct {
	store    CallbackPurger
	keep     time.Duration
	interval time.Duration
	log      *slog.Logger
}

// NewRetention returns a Retention that keeps final callbacks for keep
// (0: forever) and purges every interval. A negative keep or a
// non-positive interval is an error.
func NewRetention(store CallbackPurger, keep, interval time.Duration, log *slog.Logger) (*Retention, error) {
	if keep < 0 || interval <= 0 {
		return nil, fmt.Errorf("callback retention: invalid retention %s or interval %s", keep, interval)
	}
	return &Retention{store: store, keep: keep, interval: interval, log: log}, nil
}

// Run purges at start, then every interval, until ctx ends; with a
// retention of 0 it returns at once. Failures (the database is away) are
// logged, and the next run tries again.
func (r *Retention) Run(ctx context.Context) error {
	if r.keep == 0 {
		return nil
	}
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		if n, err := r.Purge(ctx); err != nil && ctx.Err() == nil {
			r.log.WarnContext(ctx, "callback purge failed", slog.String("error", err.Error()), slog.Int64("purged", n))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Purge deletes the callbacks past the retention now and returns how many
// (none with a retention of 0), logging the count when there were any.
// On error, the count so far comes with it.
func (r *Retention) Purge(ctx context.Context) (int64, error) {
	if r.keep == 0 {
		return 0, nil
	}
	n, err := r.store.Purge(ctx, r.keep)
	if n > 0 {
		r.log.InfoContext(ctx, "callbacks purged", slog.Int64("purged", n), slog.Duration("retention", r.keep))
	}
	if err != nil {
		return n, fmt.Errorf("purge callbacks older than %s: %w", r.keep, err)
	}
	return n, nil
}
