package e2e

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// benchWarmup is how many photos go through the services before a
// benchmark's measurement starts.
const benchWarmup = 100

// pollInterval is how long a benchmark waits before it counts finished
// photos again, elapsed into a run: often enough that the run's end is
// seen within about 0.5% of its time (and 20 ms), seldom enough that the
// counting does not load the database it measures (every 20 ms, a 15 s run
// of 200 large photos counted 750 times, 0.14 ms each: about 0.5 ms of the
// database's time per photo).
func pollInterval(elapsed time.Duration) time.Duration {
	return min(max(elapsed/200, 20*time.Millisecond), 250*time.Millisecond)
}

// BenchmarkEndToEndTiny measures the pipeline's own overhead: 64x48 JPEGs.
func BenchmarkEndToEndTiny(b *testing.B) { benchEndToEnd(b, encodeJPEG(b, 64, 48), 1, 0) }

// BenchmarkEndToEndSmall uses 640x480 JPEGs: resizing starts to count.
func BenchmarkEndToEndSmall(b *testing.B) { benchEndToEnd(b, encodeJPEG(b, 640, 480), 1, 0) }

// BenchmarkResizerReplicas runs 1, 2 and 3 resizer replicas of one worker
// each on 1600x1200 JPEGs, large enough that resizing is the bottleneck:
// how throughput grows with replicas (on one machine, until its cores are
// used up).
func BenchmarkResizerReplicas(b *testing.B) {
	for _, n := range []int{1, 2, 3} {
		b.Run(fmt.Sprintf("resizers=%d", n), func(b *testing.B) { benchEndToEnd(b, encodeJPEG(b, 1600, 1200), n, 1) })
	}
}

// benchEndToEnd pushes b.N copies of the JPEG img through the real services, RabbitMQ
// and Postgres, with `resizers` resizer replicas of resizerWorkers workers
// each (0: the default, one per CPU), and reports photos/s and the latency
// from request to completed (p50, p99). All photos are sent at once, so
// latency includes queueing. Run it with make bench. It returns photos/s.
func benchEndToEnd(b *testing.B, img []byte, resizers, resizerWorkers int) float64 {
	env := NewEnv(b)
	src := ImageServer(b, map[string][]byte{"small.jpg": img})
	env.APIAddr = FreeAddr(b)
	env.Start("ingest-api", "HTTP_ADDR="+env.APIAddr)
	env.Start("recorder")
	env.Start("downloader")
	for range resizers {
		if resizerWorkers > 0 {
			env.Start("resizer", fmt.Sprintf("WORKERS=%d", resizerWorkers))
		} else {
			env.Start("resizer")
		}
	}
	api := "http://" + env.APIAddr
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, env.DB)
	require.NoError(b, err)
	defer conn.Close(ctx)

	// run sends n photos (tagged with run in their URLs) and waits until
	// they have all finished.
	run := func(tag string, n int) {
		for sent := 0; sent < n; {
			k := min(500, n-sent)
			urls := make([]string, k)
			for i := range urls {
				urls[i] = fmt.Sprintf("%s/small.jpg?run=%s&n=%d", src.URL, tag, sent+i)
			}
			require.Equal(b, http.StatusCreated, Call(b, http.MethodPost, api+"/photos", map[string]any{"urls": urls, "process": true}, nil))
			sent += k
		}
		began := time.Now()
		deadline := began.Add(10 * time.Minute)
		for {
			var done int
			require.NoError(b, conn.QueryRow(ctx, "SELECT count(*) FROM photos WHERE status IN ('completed','failed') AND url LIKE $1",
				"%run="+tag+"&%").Scan(&done))
			if done == n {
				return
			}
			require.True(b, time.Now().Before(deadline), "only %d of %d photos finished", done, n)
			time.Sleep(pollInterval(time.Since(began)))
		}
	}
	// The services have just started: their first photos open database
	// connections and warm caches. A running deployment has done that, so
	// a few photos go through before the measurement starts.
	run("warmup", benchWarmup)

	b.ResetTimer()
	cpuBefore := readCPU(env)
	start := time.Now()
	run("timed", b.N)
	elapsed := time.Since(start)
	b.StopTimer()
	reportCPU(b, cpuBefore, readCPU(env), b.N)

	var failed int
	require.NoError(b, conn.QueryRow(ctx, "SELECT count(*) FROM photos WHERE status = 'failed'").Scan(&failed))
	require.Zero(b, failed)
	rows, err := conn.Query(ctx, "SELECT extract(epoch FROM completed_at - created_at) FROM photos WHERE url LIKE '%run=timed&%'")
	require.NoError(b, err)
	lat, err := pgx.CollectRows(rows, pgx.RowTo[float64])
	require.NoError(b, err)
	sort.Float64s(lat)
	rate := float64(b.N) / elapsed.Seconds()
	b.ReportMetric(rate, "photos/s")
	b.ReportMetric(lat[len(lat)/2]*1000, "p50-ms")
	b.ReportMetric(lat[len(lat)*99/100]*1000, "p99-ms")
	return rate
}
