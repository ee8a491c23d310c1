// Package config loads ingest-api's settings from the environment.
package config

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/photopipe/photopipe/shared/bus"
	"github.com/photopipe/photopipe/shared/database"
	"github.com/photopipe/photopipe/shared/envconfig"
	"github.com/photopipe/photopipe/shared/logging"
	"github.com/photopipe/photopipe/shared/rendition"
	"github.com/photopipe/photopipe/shared/storage"
)

// Config is every setting of ingest-api.
type Config struct {
	Bus        bus.Config
	DB         database.Config
	Log        logging.Config
	Presets    rendition.Presets
	Storage    storage.Config // STORAGE_BACKEND, STORAGE_DIR, S3_* (shared/storage)
	StorageDir string         // STORAGE_DIR (also in Storage.Dir; kept for existing callers)
	HTTPAddr   string         // HTTP_ADDR
	HealthAddr string         // HEALTH_ADDR: optional second listener for health only

	MaxBodyBytes       int64         // MAX_BODY_BYTES: JSON request bodies
	MaxUploadBytes     int64         // MAX_UPLOAD_BYTES: multipart upload request bodies (all files)
	MaxPhotosPerCall   int           // MAX_PHOTOS_PER_REQUEST
	MaxPhotosPerJob    int           // MAX_PHOTOS_PER_JOB
	StoreMasterCSV     string        // STORE_MASTER_CSV: validate job groups (stores) against it
	MaxURLLength       int           // MAX_URL_LENGTH
	PageSize           int           // PAGE_SIZE_DEFAULT
	MaxPageSize        int           // PAGE_SIZE_MAX
	ShutdownTimeout    time.Duration // SHUTDOWN_TIMEOUT
	OutboxBatch        int           // OUTBOX_BATCH: events published per relay round
	OutboxPollInterval time.Duration // OUTBOX_POLL_INTERVAL: how often the relay looks without being woken
	OutboxLinger       time.Duration // OUTBOX_LINGER: how long the relay waits, once woken, for more rows

	// Security (README "Security").
	AppEnv           string   // APP_ENV: "development" or "production" (refuses AUTH_DISABLED)
	APIKeys          []string // API_KEYS: bearer keys for the API, comma-separated; never logged
	AdminAPIKeys     []string // ADMIN_API_KEYS: bearer keys for the API and /admin/*
	AuthDisabled     bool     // AUTH_DISABLED: no authentication at all (local use)
	RateLimitRPS     float64  // RATE_LIMIT_RPS: requests per second per key (or address); 0 is no limit
	RateLimitBurst   int      // RATE_LIMIT_BURST: requests at once above the rate
	RateLimitClients int      // RATE_LIMIT_CLIENTS: keys or addresses tracked at once (least recent forgotten)
	TrustedProxies   []string // TRUSTED_PROXIES: proxies whose X-Forwarded-For names the client
}

// MinKeyLength is the shortest API key accepted.
const MinKeyLength = 16

// Load reads the configuration through getenv and validates it.
func Load(getenv func(string) string) (Config, error) {
	r := envconfig.New(getenv)
	c := Config{
		Bus:                bus.LoadConfig(r, 1),
		DB:                 database.LoadConfig(r),
		Log:                logging.Config{Format: r.String("LOG_FORMAT", "json"), Level: r.String("LOG_LEVEL", "info")},
		Presets:            rendition.LoadPresets(r),
		StorageDir:         r.String("STORAGE_DIR", "./var/storage"),
		Storage:            storage.LoadConfig(r),
		HTTPAddr:           r.String("HTTP_ADDR", ":8080"),
		HealthAddr:         r.String("HEALTH_ADDR", ""),
		MaxBodyBytes:       r.Bytes("MAX_BODY_BYTES", 1<<20),
		MaxUploadBytes:     r.Bytes("MAX_UPLOAD_BYTES", 50<<20),
		MaxPhotosPerCall:   r.Int("MAX_PHOTOS_PER_REQUEST", 1000),
		MaxPhotosPerJob:    r.Int("MAX_PHOTOS_PER_JOB", 20000),
		StoreMasterCSV:     r.String("STORE_MASTER_CSV", ""),
		MaxURLLength:       r.Int("MAX_URL_LENGTH", 2048),
		PageSize:           r.Int("PAGE_SIZE_DEFAULT", 100),
		MaxPageSize:        r.Int("PAGE_SIZE_MAX", 1000),
		ShutdownTimeout:    r.Duration("SHUTDOWN_TIMEOUT", 15*time.Second),
		OutboxBatch:        r.Int("OUTBOX_BATCH", 200),
		OutboxPollInterval: r.Duration("OUTBOX_POLL_INTERVAL", time.Second),
		OutboxLinger:       r.Duration("OUTBOX_LINGER", 10*time.Millisecond),
		AppEnv:             r.String("APP_ENV", "development"),
		APIKeys:            r.List("API_KEYS", nil),
		AdminAPIKeys:       r.List("ADMIN_API_KEYS", nil),
		AuthDisabled:       r.Bool("AUTH_DISABLED", false),
		RateLimitBurst:     r.Int("RATE_LIMIT_BURST", 200),
		RateLimitClients:   r.Int("RATE_LIMIT_CLIENTS", 10000),
		TrustedProxies:     r.List("TRUSTED_PROXIES", nil),
	}
	rps, err := strconv.ParseFloat(r.String("RATE_LIMIT_RPS", "100"), 64)
	if err != nil {
		r.Fail("RATE_LIMIT_RPS", "not a number of requests per second")
	}
	c.RateLimitRPS = rps
	if err := r.Err(); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// Validate reports every setting that cannot work.
func (c Config) Validate() error {
	errs := []error{c.Bus.Validate(), c.DB.Validate(), c.Storage.Validate()}
	if c.HTTPAddr == "" {
		errs = append(errs, errors.New("HTTP_ADDR: must not be empty"))
	}
	if c.MaxBodyBytes < 1024 {
		errs = append(errs, errors.New("MAX_BODY_BYTES: must be at least 1024"))
	}
	if c.MaxUploadBytes < 1024 {
		errs = append(errs, errors.New("MAX_UPLOAD_BYTES: must be at least 1024"))
	}
	if c.MaxPhotosPerJob < 1 {
		errs = append(errs, errors.New("MAX_PHOTOS_PER_JOB: must be at least 1"))
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
	if c.OutboxLinger < 0 || c.OutboxLinger > c.OutboxPollInterval {
		errs = append(errs, errors.New("OUTBOX_LINGER: must be between 0 and OUTBOX_POLL_INTERVAL"))
	}
	return errors.Join(append(errs, c.validateSecurity()...)...)
}

// validateSecurity checks the authentication and rate-limit settings.
// Messages never quote a key.
func (c Config) validateSecurity() []error {
	var errs []error
	if c.AppEnv != "development" && c.AppEnv != "production" {
		errs = append(errs, fmt.Errorf("APP_ENV: %q is neither development nor production", c.AppEnv))
	}
	keys := len(c.APIKeys) + len(c.AdminAPIKeys)
	switch {
	case c.AuthDisabled && c.AppEnv == "production":
		errs = append(errs, errors.New("AUTH_DISABLED: authentication cannot be disabled when APP_ENV=production"))
	case c.AuthDisabled && keys > 0:
		errs = append(errs, errors.New("AUTH_DISABLED: authentication is disabled but API_KEYS or ADMIN_API_KEYS are set; unset one or the other"))
	}
	// No key at all is refused when serving (ginhttp.NewAuth), not here:
	// the migrate and healthcheck subcommands need none.
	for _, list := range []struct {
		name string
		keys []string
	}{{"API_KEYS", c.APIKeys}, {"ADMIN_API_KEYS", c.AdminAPIKeys}} {
		for i, k := range list.keys {
			if len(k) < MinKeyLength {
				errs = append(errs, fmt.Errorf("%s: key %d is shorter than %d characters", list.name, i+1, MinKeyLength))
			}
		}
	}
	if !(c.RateLimitRPS >= 0) || c.RateLimitBurst < 1 || c.RateLimitClients < 1 {
		errs = append(errs, errors.New("RATE_LIMIT_RPS, RATE_LIMIT_BURST, RATE_LIMIT_CLIENTS: need rps >= 0 (0 is no limit), burst and clients >= 1"))
	}
	for _, p := range c.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			if _, err := netip.ParseAddr(p); err != nil {
				errs = append(errs, fmt.Errorf("TRUSTED_PROXIES: %q is neither a CIDR range nor an IP address", p))
			}
		}
	}
	return errs
}
