// Package worker runs a message-consuming service: it declares the bus
// topology, wires publisher, subscriber and router, serves health endpoints
// and metrics and shuts everything down in order when its context ends.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/ThreeDotsLabs/watermill/message"
	"golang.org/x/sync/errgroup"

	"github.com/photopipe/photopipe/shared/bus"
	"github.com/photopipe/photopipe/shared/event"
	"github.com/photopipe/photopipe/shared/health"
	"github.com/photopipe/photopipe/shared/metrics"
)

// Options describe one worker service.
type Options struct {
	Service    string
	Bus        bus.Config
	Workers    int
	HealthAddr string
	// Checks are extra readiness checks (the database, storage).
	Checks []health.Check
	Log    *slog.Logger
	// Handlers builds the service's typed handlers around the event bus
	// they publish with.
	Handlers func(events *cqrs.EventBus) ([]cqrs.EventHandler, error)
	// HealthBound, when set, receives the health server's address.
	HealthBound chan<- string
	// Background, when set, runs beside the router until ctx ends, with a
	// batch publisher of its own (bus.Config.NewBatchPublisher: the
	// recorder's outbox relay).
	Background func(ctx context.Context, pub message.Publisher) error
	// DeadLetterMarks, when set, gets the marks that copies of dead
	// letters call for (bus.DeadLetterMark): the recorder's.
	DeadLetterMarks func(ctx context.Context, e *event.PhotoDeadLettered) error
	// ShutdownTimeout bounds how long a stopping service lets the
	// messages in flight finish (SHUTDOWN_TIMEOUT; 0: DefaultShutdownTimeout).
	// Then their contexts end (Work), and the ones not finished go back to
	// their queue.
	ShutdownTimeout time.Duration
	// Work, when set, is the context the messages are handled under, with
	// Abandon its cancel (from WorkContext): work of the service's own
	// that waits for them (the recorder's batch transactions) can end with
	// it. Without them Run makes its own.
	Work    context.Context
	Abandon context.CancelFunc
	// Metrics is the service's registry, served at /metrics on HealthAddr;
	// Run adds the message outcomes and the dead-letter queue depth. Nil
	// makes one.
	Metrics *metrics.Registry
}

// deadLetterTTL is how long a counted dead-letter queue depth is reused.
const deadLetterTTL = 5 * time.Second

// DefaultShutdownTimeout is how long a stopping service lets the messages
// in flight finish unless Options.ShutdownTimeout says otherwise.
const DefaultShutdownTimeout = 30 * time.Second

// abandonWait is how long Run waits for the router once it gave up on the
// messages still in flight (returned them to their queues): their handlers
// were told to stop (Work ended) and are not waited for any longer.
const abandonWait = 2 * time.Second

// WorkContext returns the context a worker's messages are handled under
// (Options.Work), carrying ctx's values but not its cancellation, and its
// cancel (Options.Abandon): a stop lets the messages in flight finish,
// and cancels it only when ShutdownTimeout has passed.
func WorkContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithCancel(context.WithoutCancel(ctx))
}

// Run runs the service until ctx ends, then stops taking messages, lets
// the ones in flight finish for up to ShutdownTimeout, then cancels them
// (Work) and returns them to their queues, and returns nil.
func Run(ctx context.Context, o Options) error {
	if o.Workers < 1 {
		return errors.New("WORKERS: must be at least 1")
	}
	wlog := watermill.NewSlogLoggerWithLevelMapping(o.Log, map[slog.Level]slog.Level{
		slog.LevelInfo: slog.LevelDebug,
	})
	if err := o.Bus.Declare(ctx, o.Log); err != nil {
		return fmt.Errorf("declare topology: %w", err)
	}
	var closers []func() error
	defer func() { bus.CloseAll(closers, o.Log) }()
	pub, err := o.Bus.NewPublisher(wlog)
	if err != nil {
		return err
	}
	closers = append(closers, pub.Close)
	events, err := bus.NewEventBus(pub, wlog)
	if err != nil {
		return fmt.Errorf("create event bus: %w", err)
	}
	sub, err := o.Bus.NewSubscriber(o.Service, wlog)
	if err != nil {
		return err
	}
	closers = append(closers, sub.Close)
	reg := o.Metrics
	if reg == nil {
		reg = metrics.New(o.Service)
	}
	observer, err := metrics.NewMessages(reg)
	if err != nil {
		return err
	}
	depth := o.Bus.NewQueueDepth()
	closers = append(closers, depth.Close)
	if err := metrics.NewDeadLetterDepth(reg, bus.DeadLetterTopic(o.Service), depth.Depth, deadLetterTTL); err != nil {
		return err
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = DefaultShutdownTimeout
	}
	if o.Work == nil || o.Abandon == nil {
		o.Work, o.Abandon = WorkContext(ctx)
	}
	defer o.Abandon()
	router, err := o.Bus.NewRouter(o.Service, pub, wlog, o.Log, bus.WithObserver(observer),
		bus.WithWorkContext(o.Work), bus.WithCloseTimeout(abandonWait))
	if err != nil {
		return err
	}
	handlers, err := o.Handlers(events)
	if err != nil {
		return err
	}
	if err := bus.AddHandlers(router, sub, o.Workers, wlog, handlers...); err != nil {
		return err
	}
	if o.DeadLetterMarks != nil {
		o.Bus.AddDeadLetterMarks(router, sub, o.DeadLetterMarks, o.Log)
	}

	g, gctx := errgroup.WithContext(ctx)
	checks := append([]health.Check{{Name: "broker", Func: func(context.Context) error {
		if gctx.Err() != nil {
			return errors.New("stopping: finishing the messages in flight")
		}
		if !pub.IsConnected() || !sub.IsConnected() {
			return errors.New("not connected to the broker")
		}
		if !router.IsRunning() {
			return errors.New("router not running")
		}
		return nil
	}}}, o.Checks...)

	var batchPub message.Publisher
	if o.Background != nil {
		bp, err := o.Bus.NewBatchPublisher(wlog)
		if err != nil {
			return err
		}
		closers = append(closers, bp.Close)
		batchPub = bp
	}

	// The health server (with /metrics) and the background work (the
	// recorder's outbox relay) run until the router has stopped: the
	// messages that finish during a stop publish their events and are
	// counted where they can be scraped.
	rest, stopRest := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRest()
	g.Go(func() error {
		defer stopRest()
		return runRouter(gctx, router, sub, o)
	})
	g.Go(func() error {
		return health.Serve(rest, o.HealthAddr, checks, o.HealthBound, health.Route{Pattern: "/metrics", Handler: reg.Handler()})
	})
	if o.Background != nil {
		g.Go(func() error { return o.Background(rest, batchPub) })
	}
	o.Log.InfoContext(ctx, "service started", slog.Int("workers", o.Workers), slog.Int("prefetch", o.Bus.Prefetch))
	err = g.Wait()
	o.Log.InfoContext(context.WithoutCancel(ctx), "service stopped")
	return err
}

// runRouter runs router until ctx ends and then until the messages in
// flight are done, for up to o.ShutdownTimeout. Past that it ends their
// context (o.Abandon) and closes sub, which returns them to their queues
// (nack, requeue) whatever their handlers still do, and waits abandonWait
// more for the router at most.
func runRouter(ctx context.Context, router *message.Router, sub message.Subscriber, o Options) error {
	done := make(chan error, 1)
	go func() { done <- router.Run(ctx) }()
	result := func(err error) error {
		if err != nil {
			return fmt.Errorf("router: %w", err)
		}
		return nil
	}
	select {
	case err := <-done:
		if err == nil {
			// Watermill closes the router when every handler's
			// subscription has ended: the service no longer works.
			err = errors.New("stopped by itself: every subscription ended")
		}
		return result(err)
	case <-ctx.Done():
	}
	grace := time.NewTimer(o.ShutdownTimeout)
	defer grace.Stop()
	select {
	case err := <-done:
		return result(err)
	case <-grace.C:
	}
	log := context.WithoutCancel(ctx)
	o.Log.WarnContext(log, "messages still in flight after the shutdown timeout: cancelling them and returning them to their queues",
		slog.Duration("shutdown_timeout", o.ShutdownTimeout))
	o.Abandon()
	// Closing the subscriber talks to the broker, which may not answer:
	// it is waited for no longer than the router.
	go func() {
		if err := sub.Close(); err != nil {
			o.Log.WarnContext(log, "close subscriber", slog.String("error", err.Error()))
		}
	}()
	select {
	case err := <-done:
		return result(err)
	case <-time.After(2 * abandonWait):
		o.Log.ErrorContext(log, "router did not stop; exiting anyway")
		return nil
	}
}
