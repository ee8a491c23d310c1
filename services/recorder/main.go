// Command recorder consumes every pipeline event and records each photo's
// state, renditions and failures in Postgres.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ThreeDotsLabs/watermill/components/cqrs"

	"github.com/photopipe/photopipe/services/recorder/internal/app"
	"github.com/photopipe/photopipe/services/recorder/internal/config"
	"github.com/photopipe/photopipe/services/recorder/internal/postgres"
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
	rec := app.New(postgres.New(db, relay.Notify), log)
	return worker.Run(ctx, worker.Options{
		Service: bus.Recorder, Bus: cfg.Bus, Workers: cfg.Workers, HealthAddr: cfg.HealthAddr, Log: log,
		Checks:     []health.Check{database.Check(db)},
		Background: relay.Run,
		Handlers: func(*cqrs.EventBus) ([]cqrs.EventHandler, error) {
			return []cqrs.EventHandler{
				cqrs.NewEventHandler(app.RequestedHandler, rec.Requested),
				cqrs.NewEventHandler(app.DownloadedHandler, rec.Downloaded),
				cqrs.NewEventHandler(app.CompletedHandler, rec.Completed),
				cqrs.NewEventHandler(app.FailedHandler, rec.Failed),
				cqrs.NewEventHandler(app.DeadLetterHandler, rec.DeadLettered),
			}, nil
		},
	})
}
