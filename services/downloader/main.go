// Command downloader consumes PhotoRequested, fetches each photo's source
// (or checks its uploaded original), stores it and publishes
// PhotoDownloaded, or PhotoFailed when the source is bad.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/ThreeDotsLabs/watermill/components/cqrs"

	"github.com/photopipe/photopipe/services/downloader/internal/app"
	"github.com/photopipe/photopipe/services/downloader/internal/config"
	"github.com/photopipe/photopipe/services/downloader/internal/fetch"
	"github.com/photopipe/photopipe/shared/bus"
	"github.com/photopipe/photopipe/shared/health"
	"github.com/photopipe/photopipe/shared/logging"
	"github.com/photopipe/photopipe/shared/metrics"
	"github.com/photopipe/photopipe/shared/storage"
	"github.com/photopipe/photopipe/shared/worker"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "downloader:", err)
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
	log, err := logging.New(cfg.Log, stdout, bus.Downloader)
	if err != nil {
		return err
	}
	store, err := storage.Open(ctx, cfg.Storage)
	if err != nil {
		return err
	}
	defer store.Close()
	reg := metrics.New(bus.Downloader)
	downloaded, err := metrics.NewDownloadedBytes(reg)
	if err != nil {
		return err
	}
	client := fetch.New(fetch.Config{
		MaxBytes: cfg.MaxBytes, ConnectTimeout: cfg.ConnectTimeout, HeaderTimeout: cfg.HeaderTimeout,
		Timeout: cfg.Timeout, MaxRedirects: cfg.MaxRedirects, UserAgent: cfg.UserAgent,
		AllowedNetworks: cfg.AllowedNetworks, Downloaded: downloaded,
	})
	for _, n := range cfg.AllowedNetworks {
		log.WarnContext(ctx, "downloads allowed from a private network", slog.String("network", n.String()))
	}
	return worker.Run(ctx, worker.Options{
		Service: bus.Downloader, Bus: cfg.Bus, Workers: cfg.Workers, HealthAddr: cfg.HealthAddr, Log: log,
		ShutdownTimeout: cfg.ShutdownTimeout, Metrics: reg,
		Handlers: func(events *cqrs.EventBus) ([]cqrs.EventHandler, error) {
			d := app.New(client, store, events, log, cfg.Retries, cfg.RetryDelay)
			d.DeadLetterSourceFailures = cfg.DeadLetterSourceFailures
			return []cqrs.EventHandler{cqrs.NewEventHandler(app.HandlerName, d.Handle)}, nil
		},
	})
}
