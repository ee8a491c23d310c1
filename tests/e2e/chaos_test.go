package e2e

import (
	"context"
	"fmt"
	"image"
	_ "image/jpeg"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/shared/testenv"
)

// vhostOf returns the virtual host of an AMQP URL made by testenv.
func vhostOf(amqpURL string) string {
	return amqpURL[strings.LastIndex(amqpURL, "/")+1:]
}

// kill SIGKILLs a service and waits until it is gone.
func kill(t *testing.T, p *proc) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Kill())
	<-p.done
}

// submitter sends batches of photos until told to stop, retrying a batch
// while ingest-api is down, and remembers what was accepted.
type submitter struct {
	mu       sync.Mutex
	accepted int
	retries  int
}

func (s *submitter) send(t *testing.T, api string, urls []string) {
	for try := 0; ; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		body := `{"process": true, "urls": ["` + strings.Join(urls, `","`) + `"]}`
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, api+"/photos", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		cancel()
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusCreated {
				s.mu.Lock()
				s.accepted += len(urls)
				s.mu.Unlock()
				return
			}
		}
		s.mu.Lock()
		s.retries++
		s.mu.Unlock()
		if try > 100 {
			t.Errorf("batch never accepted: %v", err)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestFaultInjection pushes 500 photos while it SIGKILLs and restarts every
// service once, drops all broker connections, makes the broker unreachable
// for a while (requests keep being accepted into the outbox), and drops the
// database connections. At the end every photo is completed (or failed, for
// the deliberately bad ones), with exactly one thumbnail each, every stored
// thumbnail whole, and every service stops cleanly on SIGTERM.
func TestFaultInjection(t *testing.T) {
	if testing.Short() {
		t.Skip("fault injection needs the servers")
	}
	env := NewEnv(t)
	env.Extra["OUTBOX_POLL_INTERVAL"] = "200ms"
	files := map[string][]byte{}
	for i := range 5 {
		files[fmt.Sprintf("p%d.jpg", i)] = encodeJPEG(t, 480+i*16, 360)
	}
	src := ImageServer(t, files)
	api := env.StartPipeline(2)
	const total, batch = 500, 20
	vhost := vhostOf(env.AMQP)

	var sub submitter
	var wg sync.WaitGroup
	wg.Add(1)
	start := time.Now()
	go func() {
		defer wg.Done()
		for sent := 0; sent < total; sent += batch {
			urls := make([]string, batch)
			for i := range urls {
				n := sent + i
				if n%50 == 7 {
					urls[i] = fmt.Sprintf("%s/missing-%d.jpg", src.URL, n) // deliberately bad
				} else {
					urls[i] = fmt.Sprintf("%s/p%d.jpg?n=%d", src.URL, n%5, n)
				}
			}
			sub.send(t, api, urls)
			time.Sleep(40 * time.Millisecond)
		}
	}()

	step := func(what string, f func()) {
		time.Sleep(700 * time.Millisecond)
		t0 := time.Now()
		f()
		t.Logf("chaos: %s (%s)", what, time.Since(t0).Round(time.Millisecond))
	}
	for _, name := range []string{"downloader", "resizer", "recorder"} {
		step("SIGKILL and restart "+name, func() {
			kill(t, env.Procs(name)[0])
			env.Start(name)
		})
	}
	step("SIGKILL and restart ingest-api", func() {
		kill(t, env.Procs("ingest-api")[0])
		env.Start("ingest-api", "HTTP_ADDR="+env.APIAddr)
	})
	step("close every broker connection", func() {
		out, err := testenv.RabbitMQCtl("close_all_connections", "-p", vhost, "chaos test")
		require.NoError(t, err, out)
	})
	step("broker unreachable for 3 s while requests are accepted", func() {
		out, err := testenv.RabbitMQCtl("set_vhost_limits", "-p", vhost, `{"max-connections": 0}`)
		require.NoError(t, err, out)
		out, err = testenv.RabbitMQCtl("close_all_connections", "-p", vhost, "chaos test: outage")
		require.NoError(t, err, out)
		time.Sleep(3 * time.Second)
		out, err = testenv.RabbitMQCtl("clear_vhost_limits", "-p", vhost)
		require.NoError(t, err, out)
	})
	step("drop every database connection", func() {
		conn, err := pgx.Connect(context.Background(), env.DB)
		require.NoError(t, err)
		defer conn.Close(context.Background())
		_, err = conn.Exec(context.Background(),
			"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
		require.NoError(t, err)
	})
	wg.Wait()
	injected := time.Now()

	conn, err := pgx.Connect(context.Background(), env.DB)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	counts := func() (map[string]int, error) {
		rows, err := conn.Query(context.Background(), "SELECT status::text, count(*) FROM photos GROUP BY 1")
		if err != nil {
			return nil, err
		}
		out := map[string]int{}
		for rows.Next() {
			var s string
			var n int
			if err := rows.Scan(&s, &n); err != nil {
				return nil, err
			}
			out[s] = n
		}
		return out, rows.Err()
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		out, _ := testenv.RabbitMQCtl("list_queues", "-p", vhost, "name", "messages_ready", "messages_unacknowledged", "consumers")
		t.Logf("queues:\n%s", out)
		var all struct {
			Queues []struct {
				Service string
				Reasons map[string]int
			}
		}
		Call(t, http.MethodGet, api+"/admin/dead-letters", nil, &all)
		for _, q := range all.Queues {
			t.Logf("dead letters of %s: %v", q.Service, q.Reasons)
		}
		var withOriginal, without int
		_ = conn.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE original_key IS NOT NULL),
			count(*) FILTER (WHERE original_key IS NULL) FROM photos WHERE status = 'processing'`).Scan(&withOriginal, &without)
		t.Logf("processing photos with a stored original: %d, without: %d", withOriginal, without)
	})
	var last map[string]int
	deadline, report := time.Now().Add(90*time.Second), time.Now().Add(10*time.Second)
	for {
		last, err = counts()
		require.NoError(t, err)
		if last["pending"] == 0 && last["processing"] == 0 && last["completed"]+last["failed"] >= sub.accepted {
			break
		}
		if time.Now().After(report) {
			t.Logf("waiting: %v of %d accepted", last, sub.accepted)
			report = time.Now().Add(10 * time.Second)
		}
		require.True(t, time.Now().Before(deadline), "photos by status after 90 s: %v of %d accepted", last, sub.accepted)
		time.Sleep(250 * time.Millisecond)
	}
	recovered := time.Since(injected)
	t.Logf("accepted %d photos (%d batch retries while ingest-api or the database was away); final: %v; done %s after the last fault, %s in all",
		sub.accepted, sub.retries, last, recovered.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))

	// Failures are exactly the deliberately bad URLs, for the right reason.
	var badFailed, otherFailed, thumbs, thumbPhotos, completed int
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT
		count(*) FILTER (WHERE status = 'failed' AND url LIKE '%/missing-%' AND failure_code = 'download_http_status'),
		count(*) FILTER (WHERE status = 'failed' AND NOT (url LIKE '%/missing-%' AND failure_code = 'download_http_status')),
		count(*) FILTER (WHERE status = 'completed')
		FROM photos`).Scan(&badFailed, &otherFailed, &completed))
	require.NoError(t, conn.QueryRow(context.Background(), "SELECT count(*), count(DISTINCT photo_uuid) FROM photo_thumbnails").Scan(&thumbs, &thumbPhotos))
	assert.Zero(t, otherFailed, "only the deliberately bad photos fail")
	assert.Equal(t, last["failed"], badFailed)
	assert.Equal(t, completed, thumbs, "exactly one thumbnail row per completed photo")
	assert.Equal(t, completed, thumbPhotos)
	var onlyBad int
	require.NoError(t, conn.QueryRow(context.Background(), "SELECT count(*) FROM photos WHERE url LIKE '%/missing-%' AND status <> 'failed'").Scan(&onlyBad))
	assert.Zero(t, onlyBad)

	// Every stored thumbnail is whole; killed writers leave at most
	// temporary files, never a partial file under a final key.
	rows, err := conn.Query(context.Background(), "SELECT url, width, height FROM photo_thumbnails")
	require.NoError(t, err)
	for rows.Next() {
		var key string
		var w, h int
		require.NoError(t, rows.Scan(&key, &w, &h))
		f, err := os.Open(filepath.Join(env.Storage, key))
		require.NoError(t, err)
		img, _, err := image.Decode(f)
		require.NoError(t, f.Close())
		require.NoError(t, err, key)
		assert.Equal(t, [2]int{w, h}, [2]int{img.Bounds().Dx(), img.Bounds().Dy()}, key)
	}
	require.NoError(t, rows.Err())
	temps := 0
	require.NoError(t, filepath.WalkDir(env.Storage, func(path string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".tmp-") {
			temps++
		}
		return err
	}))
	t.Logf("completed %d, failed %d (all deliberately bad), thumbnail rows %d, temporary files left by killed writers %d",
		completed, badFailed, thumbs, temps)

	// Nothing waits in a dead-letter queue.
	var all struct {
		Queues []struct {
			Service string
			Count   int
		}
	}
	require.Equal(t, http.StatusOK, Call(t, http.MethodGet, api+"/admin/dead-letters", nil, &all))
	for _, q := range all.Queues {
		assert.Zero(t, q.Count, "dead letters of %s", q.Service)
	}

	// Graceful shutdown: SIGTERM and exit 0.
	for _, name := range []string{"ingest-api", "downloader", "resizer", "recorder"} {
		for _, p := range env.Procs(name) {
			select {
			case <-p.done:
				continue // killed by the chaos above
			default:
			}
			t0 := time.Now()
			p.Stop(t)
			assert.NoError(t, p.err, "%s exits 0 on SIGTERM", name)
			t.Logf("%s stopped in %s", name, time.Since(t0).Round(time.Millisecond))
		}
	}
}
