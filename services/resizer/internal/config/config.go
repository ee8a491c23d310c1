// Package config loads the resizer's settings from the environment.
package config

import (
	"errors"
	"runtime"

	"github.com/photopipe/photopipe/shared/bus"
	"github.com/photopipe/photopipe/shared/envconfig"
	"github.com/photopipe/photopipe/shared/logging"
	"github.com/photopipe/photopipe/shared/rendition"
)

// Config is every setting of the resizer.
type Config struct {
	Bus        bus.Config
	Log        logging.Config
	StorageDir string // STORAGE_DIR
	HealthAddr string // HEALTH_ADDR; empty serves no health endpoints
	Workers    int    // WORKERS: images decoded at once per replica (default: CPUs)
	MaxPixels  int64  // MAX_PIXELS: width*height limit of a decoded image
	// Presets are the named renditions: the defaults, plus or overridden by
	// RENDITIONS ("name=fit|crop:WxH:jpeg|png[:quality];...").
	Presets rendition.Presets
}

// Load reads the configuration through getenv and validates it.
func Load(getenv func(string) string) (Config, error) {
	r := envconfig.New(getenv)
	c := Config{
		Bus:        bus.LoadConfig(r, 4),
		Log:        logging.Config{Format: r.String("LOG_FORMAT", "json"), Level: r.String("LOG_LEVEL", "info")},
		StorageDir: r.String("STORAGE_DIR", "./var/storage"),
		HealthAddr: r.String("HEALTH_ADDR", ""),
		Workers:    r.Int("WORKERS", runtime.GOMAXPROCS(0)),
		MaxPixels:  int64(r.Int("MAX_PIXELS", 100_000_000)),
		Presets:    rendition.LoadPresets(r),
	}
	if err := r.Err(); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// Validate reports every setting that cannot work.
func (c Config) Validate() error {
	errs := []error{c.Bus.Validate()}
	if c.Workers < 1 {
		errs = append(errs, errors.New("WORKERS: must be at least 1"))
	}
	if c.MaxPixels < 1 {
		errs = append(errs, errors.New("MAX_PIXELS: must be positive"))
	}
	return errors.Join(errs...)
}
