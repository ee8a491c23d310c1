// Package config loads the resizer's settings from the environment.
package config

import (
	"errors"
	"runtime"
	"time"

	"github.com/photopipe/photopipe/shared/bus"
	"github.com/photopipe/photopipe/shared/envconfig"
	"github.com/photopipe/photopipe/shared/logging"
	"github.com/photopipe/photopipe/shared/rendition"
	"github.com/photopipe/photopipe/shared/storage"
)

// Config is every setting of the resizer.
type Config struct {
	Bus        bus.Config
	Log        logging.Config
	Storage    storage.Config // STORAGE_BACKEND, STORAGE_DIR, S3_* (shared/storage)
	StorageDir string         // STORAGE_DIR (also in Storage.Dir; kept for existing callers)
	HealthAddr string         // HEALTH_ADDR; empty serves no health endpoints
	// Workers is how many photos a replica handles at once (WORKERS,
	// default twice the CPUs): RenderWorkers of them render, the others
	// store their renditions or wait for the broker's confirm meanwhile.
	Workers int
	// RenderWorkers is how many images a replica decodes and renders at
	// once (RENDER_WORKERS, default the CPUs, at most WORKERS).
	RenderWorkers int
	// ShutdownTimeout bounds how long a stopping replica waits for the
	// messages in flight before it returns them to the queue and exits
	// (SHUTDOWN_TIMEOUT).
	ShutdownTimeout time.Duration
	// SimulateGPUTime adds a random 0.1-0.4 s to every image, as the Retail
	// Pulse specification's GPU stand-in (SIMULATE_GPU_TIME, off by default).
	SimulateGPUTime bool
	MaxPixels       int64 // MAX_PIXELS: width*height limit of a decoded image or a PDF page at PDF_DPI
	// PDF pages.
	PDFDPI         int           // PDF_DPI: resolution pages are rendered at (at most)
	PDFMaxPages    int           // PDF_MAX_PAGES: longer PDFs fail with page_limit
	PDFTimeout     time.Duration // PDF_TIMEOUT: rendering one PDF, all pages
	PDFMemoryLimit int64         // PDF_MEMORY_LIMIT: memory of the renderer for one PDF
	PDFCacheDir    string        // PDF_CACHE_DIR: keeps the compiled renderer between starts; empty: none
	// Presets are the named renditions: the defaults, plus or overridden by
	// RENDITIONS ("name=fit|crop:WxH:jpeg|png[:quality];...").
	Presets rendition.Presets
}

// workersPerCPU is WORKERS' default per CPU: while one photo renders,
// another stores its renditions (fsync) and waits for the confirm of its
// event, which for a large photo takes about a third of its rendering
// time; with one handler per CPU that CPU would wait too.
const workersPerCPU = 2

// defaultPrefetch is AMQP_PREFETCH's default: one message per worker. What
// the broker has pushed to a worker waits for the photo it is rendering, a
// PDF of many pages for minutes, while other workers and replicas may be
// idle; WORKERS (two per CPU) already keep a photo waiting for each render
// slot, its original read ahead.
const defaultPrefetch = 1

// Load reads the configuration through getenv and validates it.
func Load(getenv func(string) string) (Config, error) {
	r := envconfig.New(getenv)
	cpus := runtime.GOMAXPROCS(0)
	workers := r.Int("WORKERS", workersPerCPU*cpus)
	c := Config{
		Bus:             bus.LoadConfig(r, defaultPrefetch),
		Log:             logging.Config{Format: r.String("LOG_FORMAT", "json"), Level: r.String("LOG_LEVEL", "info")},
		StorageDir:      r.String("STORAGE_DIR", "./var/storage"),
		Storage:         storage.LoadConfig(r),
		HealthAddr:      r.String("HEALTH_ADDR", ""),
		Workers:         workers,
		RenderWorkers:   r.Int("RENDER_WORKERS", min(cpus, workers)),
		ShutdownTimeout: r.Duration("SHUTDOWN_TIMEOUT", 30*time.Second),
		MaxPixels:       int64(r.Int("MAX_PIXELS", 100_000_000)),
		SimulateGPUTime: r.Bool("SIMULATE_GPU_TIME", false),
		Presets:         rendition.LoadPresets(r),

		PDFDPI:         r.Int("PDF_DPI", 200),
		PDFMaxPages:    r.Int("PDF_MAX_PAGES", 200),
		PDFTimeout:     r.Duration("PDF_TIMEOUT", 2*time.Minute),
		PDFMemoryLimit: r.Bytes("PDF_MEMORY_LIMIT", 1<<30),
		PDFCacheDir:    r.String("PDF_CACHE_DIR", ""),
	}
	if err := r.Err(); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// Validate reports every setting that cannot work.
func (c Config) Validate() error {
	errs := []error{c.Bus.Validate(), c.Storage.Validate()}
	if c.Workers < 1 {
		errs = append(errs, errors.New("WORKERS: must be at least 1"))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("SHUTDOWN_TIMEOUT: must be positive"))
	}
	if c.RenderWorkers < 1 || c.RenderWorkers > c.Workers {
		errs = append(errs, errors.New("RENDER_WORKERS: must be between 1 and WORKERS"))
	}
	if c.MaxPixels < 1 {
		errs = append(errs, errors.New("MAX_PIXELS: must be positive"))
	}
	if c.PDFDPI < 18 || c.PDFDPI > 1200 {
		errs = append(errs, errors.New("PDF_DPI: must be between 18 and 1200"))
	}
	if c.PDFMaxPages < 1 {
		errs = append(errs, errors.New("PDF_MAX_PAGES: must be at least 1"))
	}
	if c.PDFTimeout <= 0 {
		errs = append(errs, errors.New("PDF_TIMEOUT: must be positive"))
	}
	if c.PDFMemoryLimit < 64<<20 || c.PDFMemoryLimit > 4<<30 {
		errs = append(errs, errors.New("PDF_MEMORY_LIMIT: must be between 64MiB and 4GiB"))
	}
	return errors.Join(errs...)
}
