// Command resizer consumes PhotoDownloaded, renders the requested
// renditions of each original, stores them and publishes ThumbnailCreated,
// or PhotoFailed when the original cannot be decoded.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/ThreeDotsLabs/watermill/components/cqrs"

	"github.com/photopipe/photopipe/services/resizer/internal/app"
	"github.com/photopipe/photopipe/services/resizer/internal/config"
	"github.com/photopipe/photopipe/services/resizer/internal/imaging"
	"github.com/photopipe/photopipe/services/resizer/internal/pdfium"
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
		fmt.Fprintln(os.Stderr, "resizer:", err)
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
	log, err := logging.New(cfg.Log, stdout, bus.Resizer)
	if err != nil {
		return err
	}
	store, err := storage.Open(ctx, cfg.Storage)
	if err != nil {
		return err
	}
	defer store.Close()
	pdfCfg := pdfium.Config{MemoryLimit: cfg.PDFMemoryLimit}
	if cfg.PDFCacheDir != "" {
		if pdfCfg.Cache, err = pdfium.NewCache(cfg.PDFCacheDir); err != nil {
			return err
		}
	}
	pdf, err := pdfium.New(pdfCfg, log)
	if err != nil {
		return err
	}
	defer pdf.Close()
	reg := metrics.New(bus.Resizer)
	stages, err := metrics.NewStages(reg)
	if err != nil {
		return err
	}
	return worker.Run(ctx, worker.Options{
		Service: bus.Resizer, Bus: cfg.Bus, Workers: cfg.Workers, HealthAddr: cfg.HealthAddr, Log: log,
		ShutdownTimeout: cfg.ShutdownTimeout, Metrics: reg,
		Handlers: func(events *cqrs.EventBus) ([]cqrs.EventHandler, error) {
			r := app.New(store, events, log, cfg.Presets, imaging.Limits{MaxPixels: cfg.MaxPixels}).WithPDF(app.PDFOptions{
				Renderer: pdf, DPI: cfg.PDFDPI, MaxPages: cfg.PDFMaxPages, Timeout: cfg.PDFTimeout,
			}).WithConcurrency(cfg.RenderWorkers)
			r = r.WithTimings(func(t imaging.Timings) {
				stages.Observe(metrics.StageDecode, t.Decode)
				stages.Observe(metrics.StageResize, t.Resize)
				stages.Observe(metrics.StageEncode, t.Encode)
			})
			if cfg.SimulateGPUTime {
				r = r.WithSimulatedGPU(app.Sleep)
			}
			return []cqrs.EventHandler{cqrs.NewEventHandler(app.HandlerName, r.Handle)}, nil
		},
	})
}
