// Package config loads the recorder's settings from the environment.
package config

import (
	"errors"
	"net/netip"
	"time"

	"github.com/photopipe/photopipe/shared/bus"
	"github.com/photopipe/photopipe/shared/database"
	"github.com/photopipe/photopipe/shared/envconfig"
	"github.com/photopipe/photopipe/shared/logging"
	"github.com/photopipe/photopipe/shared/netguard"
)

// Config is every setting of the recorder.
type Config struct {
	Bus        bus.Config
	DB         database.Config
	Log        logging.Config
	HealthAddr string // HEALTH_ADDR; empty serves no health endpoints
	Workers    int    // WORKERS: events handled at once per replica, per topic
	// Batch is how many events one transaction applies at most
	// (RECORD_BATCH): events handled at once are committed together.
	Batch int
	// ShutdownTimeout bounds how long a stopping replica waits for the
	// messages in flight (their transactions) before it cancels them,
	// returns the messages to the queue and exits (SHUTDOWN_TIMEOUT).
	ShutdownTimeout time.Duration
	Callbacks       Callbacks
}

// Callbacks are the settings of callback delivery (README "Callbacks").
type Callbacks struct {
	// Secret signs every callback body (CALLBACK_SECRET); without it no
	// callback is sent: each fails with the reason instead.
	Secret       string
	Timeout      time.Duration // CALLBACK_TIMEOUT: one POST, connect to last byte
	MaxAttempts  int           // CALLBACK_MAX_ATTEMPTS: tries before a callback is failed
	BackoffMin   time.Duration // CALLBACK_BACKOFF_MIN: wait after the first failed try
	BackoffMax   time.Duration // CALLBACK_BACKOFF_MAX: longest wait between tries
	Workers      int           // CALLBACK_WORKERS: POSTs in flight per replica
	PollInterval time.Duration // CALLBACK_POLL_INTERVAL: how often the dispatcher looks without being woken
	UserAgent    string        // CALLBACK_USER_AGENT
	// Retention is how long delivered and failed callbacks, with their
	// tries, are kept before the recorder purges them
	// (CALLBACK_RETENTION); 0 keeps them forever.
	Retention time.Duration
	// AllowedNetworks are private or reserved ranges callback targets may
	// be on (CALLBACK_ALLOWED_NETWORKS, by default DOWNLOAD_ALLOWED_NETWORKS:
	// the same rules as downloads).
	AllowedNetworks []netip.Prefix
}

// Load reads the configuration through getenv and validates it.
func Load(getenv func(string) string) (Config, error) {
	r := envconfig.New(getenv)
	c := Config{
		Bus:        bus.LoadConfig(r, 64),
		DB:         database.LoadConfig(r),
		Log:        logging.Config{Format: r.String("LOG_FORMAT", "json"), Level: r.String("LOG_LEVEL", "info")},
		HealthAddr: r.String("HEALTH_ADDR", ""),
		// Enough handlers per topic that the events of a busy pipeline
		// find each other in one transaction (RECORD_BATCH).
		Workers:         r.Int("WORKERS", 16),
		Batch:           r.Int("RECORD_BATCH", 128),
		ShutdownTimeout: r.Duration("SHUTDOWN_TIMEOUT", 30*time.Second),
		Callbacks: Callbacks{
			Secret:       r.String("CALLBACK_SECRET", ""),
			Timeout:      r.Duration("CALLBACK_TIMEOUT", 10*time.Second),
			MaxAttempts:  r.Int("CALLBACK_MAX_ATTEMPTS", 10),
			BackoffMin:   r.Duration("CALLBACK_BACKOFF_MIN", 5*time.Second),
			BackoffMax:   r.Duration("CALLBACK_BACKOFF_MAX", time.Hour),
			Workers:      r.Int("CALLBACK_WORKERS", 8),
			PollInterval: r.Duration("CALLBACK_POLL_INTERVAL", time.Second),
			UserAgent:    r.String("CALLBACK_USER_AGENT", "photopipe-callback/1"),
			Retention:    r.Duration("CALLBACK_RETENTION", 30*24*time.Hour),
		},
	}
	downloads := r.List("DOWNLOAD_ALLOWED_NETWORKS", nil)
	nets := r.List("CALLBACK_ALLOWED_NETWORKS", downloads)
	allowed, err := netguard.ParseNetworks(nets)
	if err != nil {
		name := "CALLBACK_ALLOWED_NETWORKS"
		if getenv(name) == "" {
			name = "DOWNLOAD_ALLOWED_NETWORKS"
		}
		r.Fail(name, "%v", err)
	}
	c.Callbacks.AllowedNetworks = allowed
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
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("SHUTDOWN_TIMEOUT: must be positive"))
	}
	if c.Batch < 1 {
		errs = append(errs, errors.New("RECORD_BATCH: must be at least 1"))
	}
	cb := c.Callbacks
	if cb.Timeout <= 0 {
		errs = append(errs, errors.New("CALLBACK_TIMEOUT: must be positive"))
	}
	if cb.MaxAttempts < 1 {
		errs = append(errs, errors.New("CALLBACK_MAX_ATTEMPTS: must be at least 1"))
	}
	if cb.BackoffMin <= 0 || cb.BackoffMax < cb.BackoffMin {
		errs = append(errs, errors.New("CALLBACK_BACKOFF_MIN, CALLBACK_BACKOFF_MAX: need 0 < min <= max"))
	}
	if cb.Workers < 1 {
		errs = append(errs, errors.New("CALLBACK_WORKERS: must be at least 1"))
	}
	if cb.PollInterval <= 0 {
		errs = append(errs, errors.New("CALLBACK_POLL_INTERVAL: must be positive"))
	}
	if cb.Retention < 0 {
		errs = append(errs, errors.New("CALLBACK_RETENTION: must not be negative (0 keeps callbacks forever)"))
	}
	return errors.Join(errs...)
}
