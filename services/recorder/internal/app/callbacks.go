package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/photopipe/photopipe/shared/bus"
	"github.com/photopipe/photopipe/shared/database"
)

// Delivery is a claimed callback to send: Attempt is the number of this
// try, from 1.
type Delivery struct {
	ID      string
	URL     string
	Payload []byte
	Attempt int
}

// AttemptResult is what one try at a delivery did, and what comes next.
type AttemptResult struct {
	CallbackID string
	Attempt    int
	StartedAt  time.Time
	Duration   time.Duration
	StatusCode int    // 0 when no response arrived
	Error      string // "" when delivered
	// Status is the callback's status after this try: pending (to be
	// retried after RetryIn), delivered or failed.
	Status  database.CallbackStatus
	RetryIn time.Duration
}

// CallbackStore holds queued callbacks. Claim takes up to limit due ones
// for lease (counting the try), so that replicas never send one twice at
// once; Record stores a try's result and releases the claim.
type CallbackStore interface {
	Claim(ctx context.Context, limit int, lease time.Duration) ([]Delivery, error)
	Record(ctx context.Context, r AttemptResult) error
	// Release gives back a claim whose try was cut short by this
	// recorder stopping: due again at once, with the same try number.
	Release(ctx context.Context, callbackID string, attempt int) error
}

// Sender POSTs a delivery and returns the response's status code. Errors
// are a refused or failed try; bus.Permanent ones will not get better
// with retries (a forbidden address, no signing secret).
type Sender interface {
	Send(ctx context.Context, d Delivery) (int, error)
}

// DispatchConfig bounds a Dispatcher.
type DispatchConfig struct {
	MaxAttempts  int
	BackoffMin   time.Duration
	BackoffMax   time.Duration
	Workers      int           // tries in flight at once
	PollInterval time.Duration // how often to look without being woken
	// Lease is how long a claimed callback stays with this replica; it must
	// outlast a try (the send timeout) and its recording.
	Lease time.Duration
}

// Dispatcher delivers queued callbacks: it claims due ones, sends them in
// parallel, records every try, and retries failures with exponential
// backoff and jitter until MaxAttempts, when the callback is failed.
type Dispatcher struct {
	store  CallbackStore
	sender Sender
	cfg    DispatchConfig
	log    *slog.Logger
	wake   chan struct{}
}

// NewDispatcher returns a Dispatcher.
func NewDispatcher(store CallbackStore, sender Sender, cfg DispatchConfig, log *slog.Logger) (*Dispatcher, error) {
	if cfg.MaxAttempts < 1 || cfg.Workers < 1 || cfg.PollInterval <= 0 || cfg.Lease <= 0 ||
		cfg.BackoffMin <= 0 || cfg.BackoffMax < cfg.BackoffMin {
		return nil, fmt.Errorf("callback dispatcher: invalid config %+v", cfg)
	}
	return &Dispatcher{store: store, sender: sender, cfg: cfg, log: log, wake: make(chan struct{}, 1)}, nil
}

// Notify tells the dispatcher that a callback was queued.
func (d *Dispatcher) Notify() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run delivers callbacks until ctx ends, with up to Workers tries in
// flight: a slot that frees claims the next due callback at once, so a
// receiver that never answers holds one slot for its timeout, not the
// others' deliveries. Store failures (the database is away) are logged and
// retried with backoff.
func (d *Dispatcher) Run(ctx context.Context) error {
	inFlight := make(chan struct{}, d.cfg.Workers) // one token a try
	freed := make(chan struct{}, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	backoff := d.cfg.PollInterval / 4
	for {
		wait := d.cfg.PollInterval
		if free := d.cfg.Workers - len(inFlight); free > 0 {
			due, err := d.store.Claim(ctx, free, d.cfg.Lease)
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				d.log.WarnContext(ctx, "callback dispatch failed", slog.String("error", err.Error()))
				backoff = min(max(backoff*2, time.Millisecond), 5*time.Second)
				wait = backoff
			} else {
				backoff = d.cfg.PollInterval / 4
			}
			for _, del := range due {
				inFlight <- struct{}{}
				wg.Go(func() {
					defer func() {
						<-inFlight
						select {
						case freed <- struct{}{}:
						default:
						}
					}()
					if err := d.try(ctx, del); err != nil {
						d.log.WarnContext(ctx, "callback dispatch failed", slog.String("error", err.Error()))
					}
				})
			}
			if err == nil && len(due) == free {
				wait = 0 // more may be due: claim again as soon as a slot frees
			}
		}
		if wait == 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-freed:
			}
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-d.wake:
		case <-freed:
		case <-time.After(wait):
		}
	}
}

// Round is one step for a caller that drives the dispatcher itself (the
// tests): it claims the due callbacks (up to Workers), tries each once,
// records the results and waits for all of them, unlike Run, which claims
// again as each try ends. It returns how many it claimed.
func (d *Dispatcher) Round(ctx context.Context) (int, error) {
	due, err := d.store.Claim(ctx, d.cfg.Workers, d.cfg.Lease)
	if err != nil {
		return 0, fmt.Errorf("claim callbacks: %w", err)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(due))
	for i, del := range due {
		wg.Go(func() { errs[i] = d.try(ctx, del) })
	}
	wg.Wait()
	return len(due), errors.Join(errs...)
}

// try sends one delivery and records the outcome.
func (d *Dispatcher) try(ctx context.Context, del Delivery) error {
	start := time.Now()
	code, err := d.sender.Send(ctx, del)
	res := AttemptResult{
		CallbackID: del.ID, Attempt: del.Attempt, StartedAt: start, Duration: time.Since(start),
		StatusCode: code, Status: database.CallbackDelivered,
	}
	log := d.log.With(slog.String("callback_id", del.ID), slog.Int("attempt", del.Attempt))
	if err != nil && ctx.Err() != nil {
		// Cut short by this recorder stopping, not the receiver's doing:
		// the try does not count (a last one would give up, any other
		// would wait a whole backoff), and another replica, or this one
		// started again, sends it at once.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if rerr := d.store.Release(rctx, del.ID, del.Attempt); rerr != nil {
			return fmt.Errorf("release callback %s attempt %d: %w (the lease runs out instead)", del.ID, del.Attempt, rerr)
		}
		log.InfoContext(rctx, "callback try interrupted by shutdown; released", slog.String("error", err.Error()))
		return nil
	}
	if err != nil {
		res.Error = err.Error()
		switch {
		case bus.IsPermanent(err):
			res.Status = database.CallbackFailed
		case del.Attempt >= d.cfg.MaxAttempts:
			res.Status = database.CallbackFailed
			res.Error = fmt.Sprintf("%s (attempt %d of %d, giving up)", res.Error, del.Attempt, d.cfg.MaxAttempts)
		default:
			res.Status = database.CallbackPending
			res.RetryIn = d.backoff(del.Attempt)
		}
	}
	// Recorded even when ctx ended after the try: the try happened.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := d.store.Record(rctx, res); err != nil {
		return fmt.Errorf("record callback %s attempt %d: %w", del.ID, del.Attempt, err)
	}
	switch res.Status {
	case database.CallbackDelivered:
		log.InfoContext(ctx, "callback delivered", slog.Int("status_code", code), slog.Duration("duration", res.Duration))
	case database.CallbackFailed:
		log.WarnContext(ctx, "callback failed", slog.String("error", res.Error))
	default:
		log.InfoContext(ctx, "callback attempt failed", slog.String("error", res.Error), slog.Duration("retry_in", res.RetryIn))
	}
	return nil
}

// backoff is the wait after failed try number attempt: BackoffMin doubled
// per earlier try, capped at BackoffMax, with equal jitter (between half
// and all of it) so that callbacks failing together spread out.
func (d *Dispatcher) backoff(attempt int) time.Duration {
	wait := d.cfg.BackoffMin
	for i := 1; i < attempt && wait < d.cfg.BackoffMax; i++ {
		wait *= 2
	}
	wait = min(wait, d.cfg.BackoffMax)
	half := wait / 2
	return half + rand.N(wait-half+1)
}
