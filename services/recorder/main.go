// Command recorder consumes every pipeline event and records each photo's
// state, renditions and failures in Postgres.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/ThreeDotsLabs/watermill/message"
	"golang.org/x/sync/errgroup"
	"gorm.io/gorm"

	"github.com/photopipe/photopipe/services/recorder/internal/app"
	"github.com/photopipe/photopipe/services/recorder/internal/config"
	"github.com/photopipe/photopipe/services/recorder/internal/postgres"
	"github.com/photopipe/photopipe/services/recorder/internal/webhook"
	"github.com/photopipe/photopipe/shared/bus"
	"github.com/photopipe/photopipe/shared/database"
	"github.com/photopipe/photopipe/shared/health"
	"github.com/photopipe/photopipe/shared/logging"
	"github.com/photopipe/photopipe/shared/outbox"
	"github.com/photopipe/photopipe/shared/worker"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "recorder:", err)
		os.Exit(1)
	}
}

// callbackPurgeInterval is how often the recorder purges callbacks past
// CALLBACK_RETENTION (and once at start): a retention is days, so an hour
// late is nothing, and each run is a few cheap statements.
const callbackPurgeInterval = time.Hour

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	if len(args) > 0 && args[0] == "healthcheck" {
		return health.Probe(ctx, cfg.HealthAddr)
	}
	log, err := logging.New(cfg.Log, stdout, bus.Recorder)
	if err != nil {
		return err
	}
	db, err := database.Open(ctx, cfg.DB)
	if err != nil {
		return err
	}
	defer database.Close(db)
	relay := outbox.NewRelay(db, log, 200, cfg.Bus.PublishChannels, time.Second)
	callbacks, err := newDispatcher(ctx, cfg.Callbacks, db, log)
	if err != nil {
		return err
	}
	retention, err := app.NewRetention(postgres.NewCallbackStore(db), cfg.Callbacks.Retention, callbackPurgeInterval, log)
	if err != nil {
		return err
	}
	// A stop lets the events in flight finish, then ends work: the batch
	// transaction still running is cancelled with it.
	work, abandon := worker.WorkContext(ctx)
	repo := postgres.New(db, relay.Notify, callbacks.Notify, postgres.WithBatch(cfg.Batch), postgres.WithLog(log),
		postgres.WithStop(work))
	rec := app.New(repo, log)
	return worker.Run(ctx, worker.Options{
		Service: bus.Recorder, Bus: cfg.Bus, Workers: cfg.Workers, HealthAddr: cfg.HealthAddr, Log: log,
		ShutdownTimeout: cfg.ShutdownTimeout, Work: work, Abandon: abandon,
		Checks: []health.Check{database.Check(db)},
		// The outbox relay, the callback dispatcher and the callback
		// retention purge run beside the router.
		Background: func(ctx context.Context, pub message.Publisher) error {
			g, gctx := errgroup.WithContext(ctx)
			g.Go(func() error { return relay.Run(gctx, pub) })
			g.Go(func() error { return callbacks.Run(gctx) })
			g.Go(func() error { return retention.Run(gctx) })
			return g.Wait()
		},
		// What the broker dead-letters on its own marks photos too.
		DeadLetterMarks: rec.DeadLettered,
		Handlers: func(*cqrs.EventBus) ([]cqrs.EventHandler, error) {
			return []cqrs.EventHandler{
				cqrs.NewEventHandler(app.CompletedHandler, rec.Completed),
				cqrs.NewEventHandler(app.FailedHandler, rec.Failed),
				cqrs.NewEventHandler(app.DeadLetterHandler, rec.DeadLettered),
			}, nil
		},
	})
}

// newDispatcher wires callback delivery: the dispatcher over the
// callbacks table and the signed HTTP sender.
func newDispatcher(ctx context.Context, cfg config.Callbacks, db *gorm.DB, log *slog.Logger) (*app.Dispatcher, error) {
	if cfg.Secret == "" {
		log.WarnContext(ctx, "CALLBACK_SECRET is not set: callbacks will fail instead of being sent unsigned")
	}
	for _, n := range cfg.AllowedNetworks {
		log.WarnContext(ctx, "callbacks allowed to a private network", slog.String("network", n.String()))
	}
	sender := webhook.New(webhook.Config{
		Secret: []byte(cfg.Secret), Timeout: cfg.Timeout, UserAgent: cfg.UserAgent, AllowedNetworks: cfg.AllowedNetworks,
	})
	return app.NewDispatcher(postgres.NewCallbackStore(db), sender, app.DispatchConfig{
		MaxAttempts: cfg.MaxAttempts, BackoffMin: cfg.BackoffMin, BackoffMax: cfg.BackoffMax,
		Workers: cfg.Workers, PollInterval: cfg.PollInterval,
		// A claim outlasts a try (the timeout) and its recording.
		Lease: 2*cfg.Timeout + 30*time.Second,
	}, log)
}
