// Package config loads the recorder's settings from the environment.
package config

import (
	"errors"

	"github.com/photopipe/photopipe/shared/bus"
	"github.com/photopipe/photopipe/shared/database"
	"github.com/photopipe/photopipe/shared/envconfig"
	"github.com/photopipe/photopipe/shared/logging"
)

// Config is every setting of the recorder.
type Config struct {
	Bus        bus.Config
	DB         database.Config
	Log        logging.Config
	HealthAddr string // HEALTH_ADDR; empty serves no health endpoints
	Workers    int    // WORKERS: events applied at once per replica, per topic
}

// Load reads the configuration through getenv and validates it.
func Load(getenv func(string) string) (Config, error) {
	r := envconfig.New(getenv)
	c := Config{
		Bus:        bus.LoadConfig(r, 64),
		DB:         database.LoadConfig(r),
		Log:        logging.Config{Format: r.String("LOG_FORMAT", "json"), Level: r.String("LOG_LEVEL", "info")},
		HealthAddr: r.String("HEALTH_ADDR", ""),
		Workers:    r.Int("WORKERS", 4),
	}
	if err := r.Err(); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// Validate reports every setting that cannot work.
func (c Config) Validate() error {
	errs := []error{c.Bus.Validate(), c.DB.Validate()}
	if c.Workers < 1 {
		errs = append(errs, errors.New("WORKERS: must be at least 1"))
	}
	return errors.Join(errs...)
}
