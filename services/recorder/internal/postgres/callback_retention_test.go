package postgres_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/photopipe/photopipe/services/recorder/internal/app"
	"github.com/photopipe/photopipe/services/recorder/internal/postgres"
	"github.com/photopipe/photopipe/shared/database"
)

// agedCallbacks inserts n callbacks with status, created, changed and (when
// final) finished age ago, each with two recorded tries, and returns their
// ids.
func agedCallbacks(t *testing.T, db *gorm.DB, n int, status database.CallbackStatus, age time.Duration) []string {
	t.Helper()
	var ids []string
	require.NoError(t, db.Raw(`INSERT INTO callbacks (kind, subject_id, url, payload, status, attempts,
			next_attempt_at, created_at, updated_at, finished_at)
		SELECT 'photo', gen_random_uuid(), 'https://hooks.example.test/', '{}'::jsonb, CAST(@status AS text), 2,
		       now() - @age * interval '1 second', now() - @age * interval '1 second', now() - @age * interval '1 second',
		       CASE WHEN CAST(@status AS text) = 'pending' THEN NULL ELSE now() - @age * interval '1 second' END
		FROM generate_series(1, @n)
		RETURNING id`,
		map[string]any{"status": string(status), "age": age.Seconds(), "n": n}).Scan(&ids).Error)
	require.Len(t, ids, n)
	require.NoError(t, db.Exec(`INSERT INTO callback_attempts (callback_id, attempt, started_at, duration_ms, status_code, error)
		SELECT c.id, a, c.created_at, 12, 500, 'receiver answered 500'
		FROM callbacks c, generate_series(1, 2) AS a WHERE c.id IN ?`, ids).Error)
	return ids
}

func countCallbacks(t *testing.T, db *gorm.DB, ids []string) (callbacks, attempts int64) {
	t.Helper()
	require.NoError(t, db.Model(&database.Callback{}).Where("id IN ?", ids).Count(&callbacks).Error)
	require.NoError(t, db.Model(&database.CallbackAttempt{}).Where("callback_id IN ?", ids).Count(&attempts).Error)
	return callbacks, attempts
}

// TestPurgeDeletesOnlyOldFinalCallbacks: delivered and failed callbacks
// finished before the retention go, with their tries; recent ones stay,
// and pending ones stay however old (the dispatcher still owes them).
func TestPurgeDeletesOnlyOldFinalCallbacks(t *testing.T) {
	db := postgres.MustOpenDB(t)
	store := postgres.NewCallbackStore(db)
	const retention = 30 * 24 * time.Hour
	day := 24 * time.Hour

	oldDelivered := agedCallbacks(t, db, 3, database.CallbackDelivered, 31*day)
	oldFailed := agedCallbacks(t, db, 2, database.CallbackFailed, 400*day)
	recentDelivered := agedCallbacks(t, db, 2, database.CallbackDelivered, 29*day)
	recentFailed := agedCallbacks(t, db, 2, database.CallbackFailed, time.Hour)
	oldPending := agedCallbacks(t, db, 2, database.CallbackPending, 400*day)
	// A failed callback queued again (pending once more) that still has
	// its old finished_at: pending, so kept.
	requeued := agedCallbacks(t, db, 1, database.CallbackFailed, 400*day)
	require.NoError(t, db.Exec(`UPDATE callbacks SET status = 'pending' WHERE id = ?`, requeued[0]).Error)
	// Queued long ago but finished recently (many retries): its last
	// change, not its creation, counts.
	lateFinish := agedCallbacks(t, db, 1, database.CallbackDelivered, 40*day)
	require.NoError(t, db.Exec(`UPDATE callbacks SET finished_at = now() - interval '1 day', updated_at = now() - interval '1 day'
		WHERE id = ?`, lateFinish[0]).Error)

	n, err := store.Purge(context.Background(), retention)
	require.NoError(t, err)
	require.Equal(t, int64(5), n)
	for _, gone := range [][]string{oldDelivered, oldFailed} {
		cbs, tries := countCallbacks(t, db, gone)
		require.Zero(t, cbs)
		require.Zero(t, tries, "tries go with their callback")
	}
	for _, kept := range [][]string{recentDelivered, recentFailed, oldPending, requeued, lateFinish} {
		cbs, tries := countCallbacks(t, db, kept)
		require.Equal(t, int64(len(kept)), cbs)
		require.Equal(t, int64(2*len(kept)), tries)
	}

	n, err = store.Purge(context.Background(), retention)
	require.NoError(t, err)
	require.Zero(t, n, "nothing left to purge")
}

// TestPurgeWithRetentionZero: CALLBACK_RETENTION=0 keeps callbacks
// forever, through the store as through the periodic purge.
func TestPurgeWithRetentionZero(t *testing.T) {
	db := postgres.MustOpenDB(t)
	store := postgres.NewCallbackStore(db)
	ids := agedCallbacks(t, db, 2, database.CallbackDelivered, 400*24*time.Hour)
	ids = append(ids, agedCallbacks(t, db, 2, database.CallbackFailed, 400*24*time.Hour)...)

	n, err := store.Purge(context.Background(), 0)
	require.NoError(t, err)
	require.Zero(t, n)
	r, err := app.NewRetention(store, 0, time.Millisecond, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.NoError(t, r.Run(context.Background()))
	n, err = r.Purge(context.Background())
	require.NoError(t, err)
	require.Zero(t, n)
	cbs, tries := countCallbacks(t, db, ids)
	require.Equal(t, int64(4), cbs)
	require.Equal(t, int64(8), tries)
}

// TestPurgeBatches: more old callbacks than one statement deletes are all
// purged by one call, and replicas purging at once delete each row once.
func TestPurgeBatches(t *testing.T) {
	db := postgres.MustOpenDB(t)
	store := postgres.NewCallbackStore(db)
	total := 2*postgres.PurgeBatch + 37
	age := 60 * 24 * time.Hour
	kept := agedCallbacks(t, db, 3, database.CallbackPending, age)

	ids := agedCallbacks(t, db, total, database.CallbackDelivered, age)
	n, err := store.Purge(context.Background(), time.Hour)
	require.NoError(t, err)
	require.Equal(t, int64(total), n)
	cbs, tries := countCallbacks(t, db, ids)
	require.Zero(t, cbs)
	require.Zero(t, tries)

	ids = agedCallbacks(t, db, total, database.CallbackFailed, age)
	var wg sync.WaitGroup
	counts := make([]int64, 3)
	errs := make([]error, 3)
	for i := range counts {
		wg.Go(func() { counts[i], errs[i] = store.Purge(context.Background(), time.Hour) })
	}
	wg.Wait()
	var sum int64
	for i := range counts {
		require.NoError(t, errs[i])
		sum += counts[i]
	}
	require.Equal(t, int64(total), sum, "every row deleted once: %v", counts)
	cbs, tries = countCallbacks(t, db, ids)
	require.Zero(t, cbs)
	require.Zero(t, tries)
	cbs, _ = countCallbacks(t, db, kept)
	require.Equal(t, int64(3), cbs)
}
