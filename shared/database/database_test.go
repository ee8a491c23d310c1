package database_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/shared/database"
	"github.com/photopipe/photopipe/shared/envconfig"
	"github.com/photopipe/photopipe/shared/testenv"
)

func TestConfig(t *testing.T) {
	t.Parallel()
	cfg := database.LoadConfig(envconfig.New(func(string) string { return "" }))
	require.NoError(t, cfg.Validate())
	bad := database.LoadConfig(envconfig.New(func(k string) string {
		return map[string]string{"DATABASE_URL": "mysql://x", "DB_MAX_OPEN_CONNS": "0"}[k]
	}))
	err := bad.Validate()
	require.ErrorContains(t, err, "DATABASE_URL")
	require.ErrorContains(t, err, "DB_MAX_OPEN_CONNS")

	require.Equal(t, cfg.MaxOpenConns, cfg.MaxIdleConns, "as many idle connections as open by default")
	wide := database.LoadConfig(envconfig.New(func(k string) string {
		return map[string]string{"DB_MAX_OPEN_CONNS": "50", "DB_CONN_MAX_IDLE_TIME": "-1s"}[k]
	}))
	require.Equal(t, 50, wide.MaxIdleConns)
	require.ErrorContains(t, wide.Validate(), "DB_CONN_MAX_IDLE_TIME")
}

// TestPoolKeepsConnections: bursts as wide as the pool reuse the same
// Postgres backends instead of opening and closing one per query (a
// backend is a process: starting one costs milliseconds of CPU).
func TestPoolKeepsConnections(t *testing.T) {
	cfg := database.LoadConfig(envconfig.New(func(k string) string {
		return map[string]string{"DATABASE_URL": testenv.Postgres(t), "DB_MAX_OPEN_CONNS": "6", "DB_MIGRATE": "false"}[k]
	}))
	db, err := database.Open(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = database.Close(db) })
	var mu sync.Mutex
	backends := map[int]bool{}
	for range 5 {
		var wg sync.WaitGroup
		for range 6 {
			wg.Go(func() {
				var pid int
				// pg_sleep keeps all six busy at once.
				assert.NoError(t, db.Raw("SELECT pg_backend_pid() FROM pg_sleep(0.05)").Scan(&pid).Error)
				mu.Lock()
				backends[pid] = true
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	require.LessOrEqual(t, len(backends), 6, "backends used by 5 bursts of 6 queries")
}

// Replicas starting together must each find the schema complete, with
// every migration applied exactly once.
func TestMigrateConcurrently(t *testing.T) {
	url := testenv.Postgres(t)
	ctx := context.Background()
	cfg := database.Config{URL: url, MaxOpenConns: 4, MaxIdleConns: 2, ConnectTimeout: 30 * time.Second, Migrate: true}
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := database.Open(ctx, cfg)
			if err == nil {
				err = database.Close(db)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	db, err := database.Open(ctx, cfg)
	require.NoError(t, err)
	defer database.Close(db)
	pending, err := database.Pending(ctx, db)
	require.NoError(t, err)
	require.False(t, pending)
	require.NoError(t, database.Check(db).Func(ctx))

	var statuses []string
	require.NoError(t, db.Raw("SELECT unnest(enum_range(NULL::photo_status))::text").Scan(&statuses).Error)
	require.Equal(t, []string{"pending", "processing", "completed", "failed"}, statuses)

	// photo_thumbnails is unique per (photo, rendition, page).
	var id string
	require.NoError(t, db.Raw("INSERT INTO photos (url) VALUES ('http://x/a.jpg') RETURNING uuid").Scan(&id).Error)
	ins := "INSERT INTO photo_thumbnails (photo_uuid, rendition, page, width, height, url) VALUES (?, 'thumb', 0, 1, 1, 'k')"
	require.NoError(t, db.Exec(ins, id).Error)
	require.Error(t, db.Exec(ins, id).Error)
	require.Error(t, db.Exec("INSERT INTO photo_thumbnails (photo_uuid, width, height, url) VALUES (gen_random_uuid(), 1, 1, 'k')").Error, "photo_uuid is a foreign key")
}

func TestOpenGivesUpWhenTheServerIsAbsent(t *testing.T) {
	t.Parallel()
	cfg := database.Config{URL: "postgres://postgres@127.0.0.1:1/none?sslmode=disable", MaxOpenConns: 1, ConnectTimeout: 300 * time.Millisecond}
	_, err := database.Open(context.Background(), cfg)
	require.ErrorContains(t, err, "connect to database")
}
