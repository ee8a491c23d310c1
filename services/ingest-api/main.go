// Command ingest-api is photopipe's HTTP front door: it registers photos,
// requests their processing through a transactional outbox, reports their
// state and serves stored files.
//
// Subcommands: "migrate" applies the database migrations and exits;
// "healthcheck" probes a running instance's /readyz.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/gin-gonic/gin"
	"golang.org/x/sync/errgroup"

	"github.com/photopipe/photopipe/services/ingest-api/internal/app"
	"github.com/photopipe/photopipe/services/ingest-api/internal/config"
	"github.com/photopipe/photopipe/services/ingest-api/internal/ginhttp"
	"github.com/photopipe/photopipe/services/ingest-api/internal/postgres"
	"github.com/photopipe/photopipe/services/ingest-api/internal/storemaster"
	"github.com/photopipe/photopipe/shared/bus"
	"github.com/photopipe/photopipe/shared/database"
	"github.com/photopipe/photopipe/shared/deadletter"
	"github.com/photopipe/photopipe/shared/health"
	"github.com/photopipe/photopipe/shared/logging"
	"github.com/photopipe/photopipe/shared/metrics"
	"github.com/photopipe/photopipe/shared/outbox"
	"github.com/photopipe/photopipe/shared/storage"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, nil); err != nil {
		fmt.Fprintln(os.Stderr, "ingest-api:", err)
		os.Exit(1)
	}
}

// photoStatuses are the statuses photopipe_photos always reports.
var photoStatuses = []string{
	string(database.StatusPending), string(database.StatusProcessing),
	string(database.StatusCompleted), string(database.StatusFailed),
}

// run serves until ctx ends. When bound is not nil it receives the HTTP
// address once the server listens (tests use ":0").
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer, bound chan<- string) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	if len(args) > 0 && args[0] == "healthcheck" {
		addr := cfg.HealthAddr
		if addr == "" {
			addr = cfg.HTTPAddr
		}
		return health.Probe(ctx, addr)
	}
	log, err := logging.New(cfg.Log, stdout, bus.IngestAPI)
	if err != nil {
		return err
	}
	// Serving needs API keys or AUTH_DISABLED (checked before connecting to
	// anything); migrating does not.
	auth, err := ginhttp.NewAuth(ginhttp.AuthConfig{Keys: cfg.APIKeys, AdminKeys: cfg.AdminAPIKeys, Disabled: cfg.AuthDisabled})
	if err != nil && (len(args) == 0 || args[0] != "migrate") {
		return err
	}
	db, err := database.Open(ctx, cfg.DB)
	if err != nil {
		return err
	}
	defer database.Close(db)
	if len(args) > 0 && args[0] == "migrate" {
		if err := database.Migrate(ctx, db); err != nil {
			return err
		}
		log.InfoContext(ctx, "migrations applied")
		return nil
	}
	store, err := storage.Open(ctx, cfg.Storage)
	if err != nil {
		return err
	}
	defer store.Close()

	if err := cfg.Bus.Declare(ctx, log); err != nil {
		return fmt.Errorf("declare topology: %w", err)
	}
	wlog := watermill.NewSlogLoggerWithLevelMapping(log, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
	// The outbox relay is the only publisher here: it sends its rows in
	// batches.
	pub, err := cfg.Bus.NewBatchPublisher(wlog)
	if err != nil {
		return err
	}
	// Closing it waits for its publishes in flight, at most
	// bus.CloseWait (a broker under a resource alarm never confirms them).
	defer bus.CloseAll([]func() error{pub.Close}, log)
	relay := outbox.NewRelay(db, log, cfg.OutboxBatch, cfg.Bus.PublishChannels, cfg.OutboxPollInterval)
	relay.Linger = cfg.OutboxLinger
	repo := postgres.New(db, relay.Notify)
	uploads := app.NewUploads(repo, store, cfg.Presets, cfg.MaxPhotosPerCall, cfg.MaxURLLength)
	svc := app.NewService(repo, store, cfg.Presets, app.Limits{
		MaxPhotos: cfg.MaxPhotosPerCall, MaxURLLength: cfg.MaxURLLength,
		PageSize: cfg.PageSize, MaxPageSize: cfg.MaxPageSize,
	})

	checks := []health.Check{database.Check(db), {Name: "broker", Func: func(context.Context) error {
		if !pub.IsConnected() {
			return errors.New("not connected to the broker")
		}
		return nil
	}}}
	if auth.Disabled() {
		log.WarnContext(ctx, "authentication is disabled: anyone who reaches the API may use it, admin endpoints included (AUTH_DISABLED=true, for local use only)")
	}
	limiter := ginhttp.NewRateLimiter(cfg.RateLimitRPS, cfg.RateLimitBurst, cfg.RateLimitClients)
	gin.SetMode(gin.ReleaseMode)
	engine := gin.New()
	reg := metrics.New(bus.IngestAPI)
	httpMetrics, err := metrics.NewHTTP(reg)
	if err != nil {
		return err
	}
	// Counting photos per status is shared by the gauge and the dashboard:
	// one count per second at most, less often when counting is slow.
	overview := app.NewOverview(repo, app.Limits{PageSize: cfg.PageSize, MaxPageSize: cfg.MaxPageSize}, time.Second)
	if err := metrics.NewPhotoStatuses(reg, photoStatuses, func(ctx context.Context) (map[string]int, error) {
		c, err := overview.Counts(ctx)
		return c.Photos, err
	}, 5*time.Second); err != nil {
		return err
	}
	engine.Use(gin.Recovery(), ginhttp.Metrics(httpMetrics))
	// Only these proxies' X-Forwarded-For is believed (none by default), so
	// a client cannot pick the address it is rate-limited as.
	if err := engine.SetTrustedProxies(cfg.TrustedProxies); err != nil {
		return fmt.Errorf("TRUSTED_PROXIES: %w", err)
	}
	ready := health.ReadyHandler(checks...)
	ginhttp.NewHandler(svc, log, cfg.MaxBodyBytes).WithUploads(uploads, cfg.MaxUploadBytes).WithAuth(auth, limiter).Routes(engine,
		func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) },
		gin.WrapH(ready))
	dl := deadletter.New(cfg.Bus)
	dl.Discarding = repo.EndDiscarded
	ginhttp.NewAdminHandler(dl, log).Routes(engine)
	var stores app.StoreMaster
	if cfg.StoreMasterCSV != "" {
		s, err := storemaster.Load(cfg.StoreMasterCSV)
		if err != nil {
			return fmt.Errorf("STORE_MASTER_CSV: %w", err)
		}
		log.InfoContext(ctx, "store master loaded", slog.Int("stores", s.Len()))
		stores = s
	}
	ginhttp.NewJobsHandler(app.NewJobs(repo, stores, svc, cfg.MaxPhotosPerJob), log, cfg.MaxBodyBytes).Routes(engine)
	// The dashboard, its read endpoints and the API docs (GET /openapi.json, /docs).
	ginhttp.NewDashboardHandler(overview, log).Routes(engine)
	docs, err := ginhttp.NewDocs(ctx)
	if err != nil {
		return err
	}
	docs.Routes(engine)

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.HTTPAddr, err)
	}
	if bound != nil {
		bound <- ln.Addr().String()
	}
	srv := &http.Server{
		Handler:           engine,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       5 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http server: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(gctx), cfg.ShutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			// Past SHUTDOWN_TIMEOUT what is left is cut off: requests
			// still running (their clients get no answer and may retry;
			// what was accepted is in the outbox) and connections that
			// never sent one (Go waits 5 s for those).
			log.WarnContext(context.WithoutCancel(gctx), "requests still open after the shutdown timeout: closing their connections",
				slog.Duration("shutdown_timeout", cfg.ShutdownTimeout), slog.String("error", err.Error()))
			_ = srv.Close()
		}
		return nil
	})
	g.Go(func() error { return relay.Run(gctx, pub) })
	g.Go(func() error {
		return health.Serve(gctx, cfg.HealthAddr, checks, nil, health.Route{Pattern: "/metrics", Handler: reg.Handler()})
	})
	log.InfoContext(ctx, "service started", slog.String("addr", ln.Addr().String()))
	err = g.Wait()
	log.InfoContext(context.WithoutCancel(ctx), "service stopped")
	return err
}
