package e2e

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRecorderStopsWhileItsDatabaseHangs: the recorder's transaction
// hangs (another session holds a lock it needs, as when the database no
// longer answers), and the recorder is stopped. It exits 0 within its
// SHUTDOWN_TIMEOUT and a little more, having cancelled that transaction
// (nothing of it is left waiting in Postgres); its events went back to the
// queue, and a new recorder completes every photo with one thumbnail each.
func TestRecorderStopsWhileItsDatabaseHangs(t *testing.T) {
	if !lastPass() {
		t.Skip("the storage backend plays no part: last pass only")
	}
	const shutdown = 2 * time.Second
	env := NewEnv(t)
	src := ImageServer(t, map[string][]byte{"a.jpg": encodeJPEG(t, 320, 240)})
	env.APIAddr = FreeAddr(t)
	env.Start("ingest-api", "HTTP_ADDR="+env.APIAddr)
	rec := env.Start("recorder", fmt.Sprintf("SHUTDOWN_TIMEOUT=%s", shutdown))
	env.Start("downloader")
	env.Start("resizer")
	api := "http://" + env.APIAddr

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, env.DB)
	require.NoError(t, err)
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	// Reads go on (GET /photos/{id}); the recorder's inserts of thumbnails wait.
	_, err = tx.Exec(ctx, "LOCK TABLE photo_thumbnails IN EXCLUSIVE MODE")
	require.NoError(t, err)

	urls := make([]string, 5)
	for i := range urls {
		urls[i] = fmt.Sprintf("%s/a.jpg?n=%d", src.URL, i)
	}
	var created struct{ Photos []photo }
	require.Equal(t, http.StatusCreated, Call(t, http.MethodPost, api+"/photos", map[string]any{"urls": urls, "process": true}, &created))
	require.Len(t, created.Photos, len(urls))

	waiting := func() int {
		var n int
		require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM pg_locks
			WHERE NOT granted AND relation = 'photo_thumbnails'::regclass`).Scan(&n))
		return n
	}
	require.Eventually(t, func() bool { return waiting() > 0 }, 30*time.Second, 20*time.Millisecond,
		"the recorder never waited for the lock")

	t0 := time.Now()
	rec.Stop(t)
	took := time.Since(t0)
	t.Logf("recorder stopped in %s (SHUTDOWN_TIMEOUT %s)", took.Round(time.Millisecond), shutdown)
	assert.NoError(t, rec.err, "the recorder exits 0")
	// The shutdown timeout, then the connections' close (1 s for a
	// cancelled query's connection), with room for a slow machine.
	assert.Less(t, took, shutdown+8*time.Second, "the recorder waited for its hung transaction")
	assert.Eventually(t, func() bool { return waiting() == 0 }, 5*time.Second, 20*time.Millisecond,
		"the stopped recorder's transaction still waits in Postgres")

	require.NoError(t, tx.Rollback(ctx))
	env.Start("recorder")
	var ids []string
	for _, p := range created.Photos {
		ids = append(ids, p.UUID)
	}
	for id, p := range waitFinal(t, api, ids, 60*time.Second) {
		assert.Equal(t, "completed", p.Status, id)
		assert.Len(t, p.Thumbnails, 1, id)
	}
}
