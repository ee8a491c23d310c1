// Package config loads ingest-api's settings from the environment.
package config

import (
	"errors"
	"time"

	"github.com/photopipe/photopipe/shared/bus"
	"github.com/photopipe/photopipe/shared/database"
	"github.com/photopipe/photopipe/shared/envconfig"
	"github.com/photopipe/photopipe/shared/logging"
	"github.com/photopipe/photopipe/shared/rendition"
)

// Config is every setting of ingest-api.
type Config struct {
	Bus        bus.Config
	DB         database.Config
	Log        logging.Config
	Presets    rendition.Presets
	StorageDir string // STORAGE_DIR
	HTTPAddr   string // HTTP_ADDR
	HealthAddr string // HEALTH_ADDR: optional second listener for health only

	MaxBodyBytes       int64         // MAX_BODY_BYTES: JSON request bodies
	MaxPhotosPerCall   int           // MAX_PHOTOS_PER_REQUEST
	MaxURLLength       int           // MAX_URL_LENGTH
	PageSize           int           // PAGE_SIZE_DEFAULT
	MaxPageSize        int           // PAGE_SIZE_MAX
	ShutdownTimeout    time.Duration // SHUTDOWN_TIMEOUT
	OutboxBatch        int           // OUTBOX_BATCH: events published per relay round
	OutboxPollInterval time.Duration // OUTBOX_POLL_INTERVAL: how often the relay looks without being woken
}

// Load reads the configuration through getenv and validates it.
func Load(getenv func(string) string) (Config, error) {
	r := envconfig.New(getenv)
	c := Config{
		Bus:                bus.LoadConfig(r, 1),
		DB:                 database.LoadConfig(r),
		Log:                logging.Config{Format: r.String("LOG_FORMAT", "json"), Level: r.String("LOG_LEVEL", "info")},
		Presets:            rendition.LoadPresets(r),
		StorageDir:         r.String("STORAGE_DIR", "./var/storage"),
		HTTPAddr:           r.String("HTTP_ADDR", ":8080"),
		HealthAddr:         r.String("HEALTH_ADDR", ""),
		MaxBodyBytes:       r.Bytes("MAX_BODY_BYTES", 1<<20),
		MaxPhotosPerCall:   r.Int("MAX_PHOTOS_PER_REQUEST", 1000),
		MaxURLLength:       r.Int("MAX_URL_LENGTH", 2048),
		PageSize:           r.Int("PAGE_SIZE_DEFAULT", 100),
		MaxPageSize:        r.Int("PAGE_SIZE_MAX", 1000),
		ShutdownTimeout:    r.Duration("SHUTDOWN_TIMEOUT", 15*time.Second),
		OutboxBatch:        r.Int("OUTBOX_BATCH", 200),
		OutboxPollInterval: r.Duration("OUTBOX_POLL_INTERVAL", time.Second),
	}
	if err := r.Err(); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// Validate reports every setting that cannot work.
func (c Config) Validate() error {
	errs := []error{c.Bus.Validate(), c.DB.Validate()}
	if c.HTTPAddr == "" {
		errs = append(errs, errors.New("HTTP_ADDR: must not be empty"))
	}
	if c.MaxBodyBytes < 1024 {
		errs = append(errs, errors.New("MAX_BODY_BYTES: must be at least 1024"))
	}
	if c.MaxPhotosPerCall < 1 || c.MaxURLLength < 16 {
		errs = append(errs, errors.New("MAX_PHOTOS_PER_REQUEST, MAX_URL_LENGTH: must be at least 1 and 16"))
	}
	if c.PageSize < 1 || c.MaxPageSize < c.PageSize {
		errs = append(errs, errors.New("PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX: need 1 <= default <= max"))
	}
	if c.OutboxBatch < 1 || c.OutboxPollInterval <= 0 {
		errs = append(errs, errors.New("OUTBOX_BATCH, OUTBOX_POLL_INTERVAL: must be positive"))
	}
	return errors.Join(errs...)
}
