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
	// ShutdownTimeout bounds how long a stopping service waits for the
	// messages in flight (SHUTDOWN_TIMEOUT; 0: bus.DefaultCloseTimeout);
	// the ones not finished by then go back to their queue. Work of its
	// own that must not outlive it can end with StopContext.
	ShutdownTimeout time.Duration
	// Metrics is the service's registry, served at /metrics on HealthAddr;
	// Run adds the message outcomes and the dead-letter queue depth. Nil
	// makes one.
	Metrics *metrics.Registry
}

// deadLetterTTL is how long a counted dead-letter queue depth is reused.
const deadLetterTTL = 5 * time.Second

// StopContext returns a context that ends d after ctx does (0:
// bus.DefaultCloseTimeout), when Run with that ShutdownTimeout gives up
// waiting for the messages in flight: the work they wait for (a database
// transaction that hangs) can end with it instead of holding the process.
func StopContext(ctx context.Context, d time.Duration) context.Context {
	if d <= 0 {
		d = bus.DefaultCloseTimeout
	}
	stop, cancel := context.WithCancel(context.WithoutCancel(ctx))
	context.AfterFunc(ctx, func() { time.AfterFunc(d, cancel) })
	return stop
}

// Run runs the service until ctx ends, then stops taking messages, lets
// in-flight ones finish (or returns them to the queue) and returns nil.
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
	pub, err := o.Bus.NewPublisher(wlog)
	if err != nil {
		return err
	}
	defer pub.Close()
	events, err := bus.NewEventBus(pub, wlog)
	if err != nil {
		return fmt.Errorf("create event bus: %w", err)
	}
	sub, err := o.Bus.NewSubscriber(o.Service, wlog)
	if err != nil {
		return err
	}
	defer sub.Close()
	reg := o.Metrics
	if reg == nil {
		reg = metrics.New(o.Service)
	}
	observer, err := metrics.NewMessages(reg)
	if err != nil {
		return err
	}
	depth := o.Bus.NewQueueDepth()
	defer depth.Close()
	if err := metrics.NewDeadLetterDepth(reg, bus.DeadLetterTopic(o.Service), depth.Depth, deadLetterTTL); err != nil {
		return err
	}
	router, err := o.Bus.NewRouter(o.Service, pub, wlog, o.Log, bus.WithObserver(observer), bus.WithCloseTimeout(o.ShutdownTimeout))
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

	checks := append([]health.Check{{Name: "broker", Func: func(context.Context) error {
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
		defer bp.Close()
		batchPub = bp
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := router.Run(gctx); err != nil {
			return fmt.Errorf("router: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		return health.Serve(gctx, o.HealthAddr, checks, o.HealthBound, health.Route{Pattern: "/metrics", Handler: reg.Handler()})
	})
	if o.Background != nil {
		g.Go(func() error { return o.Background(gctx, batchPub) })
	}
	o.Log.InfoContext(ctx, "service started", slog.Int("workers", o.Workers), slog.Int("prefetch", o.Bus.Prefetch))
	err = g.Wait()
	o.Log.InfoContext(context.WithoutCancel(ctx), "service stopped")
	return err
}
