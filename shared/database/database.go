// Package database opens photopipe's Postgres database through gorm and
// keeps its schema current with versioned SQL migrations (goose), embedded
// here so every service binary carries them.
package database

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/photopipe/photopipe/shared/envconfig"
	"github.com/photopipe/photopipe/shared/health"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DefaultURL is the database used when DATABASE_URL is not set.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/photopipe?sslmode=disable"

// Config holds the database settings.
type Config struct {
	URL             string        // DATABASE_URL
	MaxOpenConns    int           // DB_MAX_OPEN_CONNS
	MaxIdleConns    int           // DB_MAX_IDLE_CONNS: connections kept open between requests
	ConnMaxLifetime time.Duration // DB_CONN_MAX_LIFETIME
	ConnMaxIdleTime time.Duration // DB_CONN_MAX_IDLE_TIME: an idle connection is closed after this
	ConnectTimeout  time.Duration // DB_CONNECT_TIMEOUT: how long start-up waits for the server
	Migrate         bool          // DB_MIGRATE: apply migrations at start
}

// LoadConfig reads the database settings; problems are recorded in r.
func LoadConfig(r *envconfig.Reader) Config {
	maxOpen := r.Int("DB_MAX_OPEN_CONNS", 20)
	return Config{
		URL:          r.String("DATABASE_URL", DefaultURL),
		MaxOpenConns: maxOpen,
		// As many idle as open: with fewer, every burst above the idle
		// count opens and closes Postgres backends (a process each, ~ms of
		// CPU) per request; the idle time limit closes a burst's extra
		// connections once it has passed.
		MaxIdleConns:    r.Int("DB_MAX_IDLE_CONNS", maxOpen),
		ConnMaxLifetime: r.Duration("DB_CONN_MAX_LIFETIME", 30*time.Minute),
		ConnMaxIdleTime: r.Duration("DB_CONN_MAX_IDLE_TIME", 5*time.Minute),
		ConnectTimeout:  r.Duration("DB_CONNECT_TIMEOUT", 60*time.Second),
		Migrate:         r.Bool("DB_MIGRATE", true),
	}
}

// Validate reports every setting that cannot work.
func (c Config) Validate() error {
	var errs []error
	if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		errs = append(errs, fmt.Errorf("DATABASE_URL: not a postgres:// URL"))
	}
	if c.MaxOpenConns < 1 {
		errs = append(errs, errors.New("DB_MAX_OPEN_CONNS: must be at least 1"))
	}
	if c.MaxIdleConns < 0 || c.MaxIdleConns > c.MaxOpenConns {
		errs = append(errs, errors.New("DB_MAX_IDLE_CONNS: must be between 0 and DB_MAX_OPEN_CONNS"))
	}
	if c.ConnMaxIdleTime < 0 {
		errs = append(errs, errors.New("DB_CONN_MAX_IDLE_TIME: must not be negative"))
	}
	if c.ConnectTimeout <= 0 {
		errs = append(errs, errors.New("DB_CONNECT_TIMEOUT: must be positive"))
	}
	return errors.Join(errs...)
}

// Open connects to the database, waiting up to ConnectTimeout for the server
// to answer, and applies pending migrations when Migrate is set.
func Open(ctx context.Context, cfg Config) (*gorm.DB, error) {
	db, err := gorm.Open(postgres.Open(cfg.URL), &gorm.Config{
		Logger:               logger.Default.LogMode(logger.Silent),
		TranslateError:       true,
		DisableAutomaticPing: true,
		NowFunc:              func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }, // Postgres keeps microseconds
	})
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	sqlDB.SetMaxOpenConns(cfg.MaxOpenConns)
	sqlDB.SetMaxIdleConns(cfg.MaxIdleConns)
	sqlDB.SetConnMaxLifetime(cfg.ConnMaxLifetime)
	sqlDB.SetConnMaxIdleTime(cfg.ConnMaxIdleTime)

	wait, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	for {
		err = sqlDB.PingContext(wait)
		if err == nil {
			break
		}
		select {
		case <-wait.Done():
			_ = sqlDB.Close()
			return nil, fmt.Errorf("connect to database: %w", err)
		case <-time.After(250 * time.Millisecond):
		}
	}
	if cfg.Migrate {
		if err := Migrate(ctx, db); err != nil {
			_ = sqlDB.Close()
			return nil, err
		}
	}
	return db, nil
}

// Migrate applies every pending migration. A Postgres advisory lock makes
// replicas that start together take turns, so each migration runs once.
func Migrate(ctx context.Context, db *gorm.DB) error {
	p, err := provider(db)
	if err != nil {
		return err
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// Pending tells whether migrations are left to apply (used by readiness).
func Pending(ctx context.Context, db *gorm.DB) (bool, error) {
	p, err := provider(db)
	if err != nil {
		return false, err
	}
	return p.HasPending(ctx)
}

func provider(db *gorm.DB) (*goose.Provider, error) {
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, fsys, goose.WithSessionLocker(locker))
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	return p, nil
}

// Close closes the database's connections.
func Close(db *gorm.DB) error {
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// Check is a readiness check: the database answers and no migration is
// pending.
func Check(db *gorm.DB) health.Check {
	return health.Check{Name: "database", Func: func(ctx context.Context) error {
		sqlDB, err := db.DB()
		if err != nil {
			return err
		}
		if err := sqlDB.PingContext(ctx); err != nil {
			return err
		}
		pending, err := Pending(ctx, db)
		if err != nil {
			return err
		}
		if pending {
			return errors.New("migrations pending")
		}
		return nil
	}}
}
