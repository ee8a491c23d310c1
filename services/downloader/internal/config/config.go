// Package config loads the downloader's settings from the environment.
package config

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/photopipe/photopipe/shared/bus"
	"github.com/photopipe/photopipe/shared/envconfig"
	"github.com/photopipe/photopipe/shared/logging"
	"github.com/photopipe/photopipe/shared/netguard"
	"github.com/photopipe/photopipe/shared/storage"
)

// Config is every setting of the downloader.
type Config struct {
	Bus        bus.Config
	Log        logging.Config
	Storage    storage.Config // STORAGE_BACKEND, STORAGE_DIR, S3_* (shared/storage)
	StorageDir string         // STORAGE_DIR (also in Storage.Dir; kept for existing callers)
	HealthAddr string         // HEALTH_ADDR; empty serves no health endpoints
	Workers    int            // WORKERS: downloads in flight per replica
	// ShutdownTimeout bounds how long a stopping replica waits for the
	// messages in flight before it returns them to the queue and exits
	// (SHUTDOWN_TIMEOUT).
	ShutdownTimeout time.Duration

	MaxBytes       int64         // DOWNLOAD_MAX_BYTES
	ConnectTimeout time.Duration // DOWNLOAD_CONNECT_TIMEOUT
	HeaderTimeout  time.Duration // DOWNLOAD_HEADER_TIMEOUT
	Timeout        time.Duration // DOWNLOAD_TIMEOUT: the whole transfer
	MaxRedirects   int           // DOWNLOAD_MAX_REDIRECTS
	Retries        int           // DOWNLOAD_RETRIES: extra tries on 5xx, timeouts, resets
	RetryDelay     time.Duration // DOWNLOAD_RETRY_DELAY: first backoff, doubled each try
	UserAgent      string        // DOWNLOAD_USER_AGENT
	// AllowedNetworks are private or reserved ranges sources may be on
	// (DOWNLOAD_ALLOWED_NETWORKS, CIDRs or addresses); every other address
	// outside the public internet is refused with blocked_address.
	AllowedNetworks []netip.Prefix
	// DeadLetterSourceFailures sends a photo whose source still fails after
	// the retries (5xx, timeouts) to the dead-letter queue, to be replayed
	// once the source is back, instead of failing it (DOWNLOAD_DEAD_LETTER_SOURCE_FAILURES).
	DeadLetterSourceFailures bool
}

// defaultPrefetch is AMQP_PREFETCH's default: one message per worker. A
// download can take up to DOWNLOAD_TIMEOUT (and its retries), and whatever
// the broker has pushed to a worker waits behind it while the other workers
// run dry: with 32 a chaos run saw 35 slow sources hold 190 other photos
// for 1 to 6.5 minutes. The WORKERS consumers together keep the pipe full.
const defaultPrefetch = 1

// Load reads the configuration through getenv and validates it.
func Load(getenv func(string) string) (Config, error) {
	r := envconfig.New(getenv)
	c := Config{
		Bus:                      bus.LoadConfig(r, defaultPrefetch),
		Log:                      logging.Config{Format: r.String("LOG_FORMAT", "json"), Level: r.String("LOG_LEVEL", "info")},
		StorageDir:               r.String("STORAGE_DIR", "./var/storage"),
		Storage:                  storage.LoadConfig(r),
		HealthAddr:               r.String("HEALTH_ADDR", ""),
		Workers:                  r.Int("WORKERS", 16),
		ShutdownTimeout:          r.Duration("SHUTDOWN_TIMEOUT", 30*time.Second),
		MaxBytes:                 r.Bytes("DOWNLOAD_MAX_BYTES", 50<<20),
		ConnectTimeout:           r.Duration("DOWNLOAD_CONNECT_TIMEOUT", 5*time.Second),
		HeaderTimeout:            r.Duration("DOWNLOAD_HEADER_TIMEOUT", 10*time.Second),
		Timeout:                  r.Duration("DOWNLOAD_TIMEOUT", 60*time.Second),
		MaxRedirects:             r.Int("DOWNLOAD_MAX_REDIRECTS", 5),
		Retries:                  r.Int("DOWNLOAD_RETRIES", 2),
		RetryDelay:               r.Duration("DOWNLOAD_RETRY_DELAY", 500*time.Millisecond),
		UserAgent:                r.String("DOWNLOAD_USER_AGENT", "photopipe-downloader/1"),
		DeadLetterSourceFailures: r.Bool("DOWNLOAD_DEAD_LETTER_SOURCE_FAILURES", false),
	}
	nets, err := netguard.ParseNetworks(r.List("DOWNLOAD_ALLOWED_NETWORKS", nil))
	if err != nil {
		r.Fail("DOWNLOAD_ALLOWED_NETWORKS", "%v", err)
	}
	c.AllowedNetworks = nets
	// Malformed values fall back to their defaults, so Validate adds only the
	// other problems: together they are every problem at once.
	return c, errors.Join(r.Err(), c.Validate())
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
	if c.MaxBytes < 1 {
		errs = append(errs, errors.New("DOWNLOAD_MAX_BYTES: must be positive"))
	}
	for _, t := range []struct {
		name string
		d    time.Duration
	}{
		{"DOWNLOAD_CONNECT_TIMEOUT", c.ConnectTimeout},
		{"DOWNLOAD_HEADER_TIMEOUT", c.HeaderTimeout},
		{"DOWNLOAD_TIMEOUT", c.Timeout},
	} {
		if t.d <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be positive", t.name))
		}
	}
	if c.MaxRedirects < 0 {
		errs = append(errs, errors.New("DOWNLOAD_MAX_REDIRECTS: must not be negative"))
	}
	if c.Retries < 0 {
		errs = append(errs, errors.New("DOWNLOAD_RETRIES: must not be negative"))
	}
	if c.RetryDelay < 0 {
		errs = append(errs, errors.New("DOWNLOAD_RETRY_DELAY: must not be negative"))
	}
	return errors.Join(errs...)
}
