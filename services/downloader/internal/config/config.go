// Package config loads the downloader's settings from the environment.
package config

import (
	"errors"
	"time"

	"github.com/photopipe/photopipe/shared/bus"
	"github.com/photopipe/photopipe/shared/envconfig"
	"github.com/photopipe/photopipe/shared/logging"
)

// Config is every setting of the downloader.
type Config struct {
	Bus        bus.Config
	Log        logging.Config
	StorageDir string // STORAGE_DIR
	HealthAddr string // HEALTH_ADDR; empty serves no health endpoints
	Workers    int    // WORKERS: downloads in flight per replica

	MaxBytes       int64         // DOWNLOAD_MAX_BYTES
	ConnectTimeout time.Duration // DOWNLOAD_CONNECT_TIMEOUT
	HeaderTimeout  time.Duration // DOWNLOAD_HEADER_TIMEOUT
	Timeout        time.Duration // DOWNLOAD_TIMEOUT: the whole transfer
	MaxRedirects   int           // DOWNLOAD_MAX_REDIRECTS
	Retries        int           // DOWNLOAD_RETRIES: extra tries on 5xx, timeouts, resets
	RetryDelay     time.Duration // DOWNLOAD_RETRY_DELAY: first backoff, doubled each try
	UserAgent      string        // DOWNLOAD_USER_AGENT
}

// Load reads the configuration through getenv and validates it.
func Load(getenv func(string) string) (Config, error) {
	r := envconfig.New(getenv)
	c := Config{
		Bus:            bus.LoadConfig(r, 32),
		Log:            logging.Config{Format: r.String("LOG_FORMAT", "json"), Level: r.String("LOG_LEVEL", "info")},
		StorageDir:     r.String("STORAGE_DIR", "./var/storage"),
		HealthAddr:     r.String("HEALTH_ADDR", ""),
		Workers:        r.Int("WORKERS", 16),
		MaxBytes:       r.Bytes("DOWNLOAD_MAX_BYTES", 50<<20),
		ConnectTimeout: r.Duration("DOWNLOAD_CONNECT_TIMEOUT", 5*time.Second),
		HeaderTimeout:  r.Duration("DOWNLOAD_HEADER_TIMEOUT", 10*time.Second),
		Timeout:        r.Duration("DOWNLOAD_TIMEOUT", 60*time.Second),
		MaxRedirects:   r.Int("DOWNLOAD_MAX_REDIRECTS", 5),
		Retries:        r.Int("DOWNLOAD_RETRIES", 2),
		RetryDelay:     r.Duration("DOWNLOAD_RETRY_DELAY", 500*time.Millisecond),
		UserAgent:      r.String("DOWNLOAD_USER_AGENT", "photopipe-downloader/1"),
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
	if c.MaxBytes < 1 {
		errs = append(errs, errors.New("DOWNLOAD_MAX_BYTES: must be positive"))
	}
	if c.ConnectTimeout <= 0 || c.HeaderTimeout <= 0 || c.Timeout <= 0 {
		errs = append(errs, errors.New("DOWNLOAD_CONNECT_TIMEOUT, DOWNLOAD_HEADER_TIMEOUT, DOWNLOAD_TIMEOUT: must be positive"))
	}
	if c.MaxRedirects < 0 || c.Retries < 0 || c.RetryDelay < 0 {
		errs = append(errs, errors.New("DOWNLOAD_MAX_REDIRECTS, DOWNLOAD_RETRIES, DOWNLOAD_RETRY_DELAY: must not be negative"))
	}
	return errors.Join(errs...)
}
