package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// BenchmarkIngestAPILoad drives the ingest-api (with Postgres and RabbitMQ,
// nothing else running) with an open-loop load generator at a fixed rate,
// $INGEST_LOAD_RPS requests per second (default 2,000) for
// $INGEST_LOAD_SECONDS (default 5), first GET /photos/{id}, then POST
// /photos/process of one pending photo each. Open loop: requests leave on
// schedule whether or not earlier ones have been answered, and latency is
// counted from the scheduled time, so a stalled server cannot hide its
// queue (no coordinated omission). It reports p50/p99 latency, the rate
// achieved and the errors of each. b.N is ignored beyond 1.
func BenchmarkIngestAPILoad(b *testing.B) {
	rps := envInt(b, "INGEST_LOAD_RPS", 2000)
	secs := envInt(b, "INGEST_LOAD_SECONDS", 5)
	n := rps * secs
	env := NewEnv(b)
	env.APIAddr = FreeAddr(b)
	env.Start("ingest-api", "HTTP_ADDR="+env.APIAddr)
	api := "http://" + env.APIAddr

	// n pending photos: one POST /process each, so every request does the
	// real work (a state change and an outbox row), none is a no-op.
	var ids []string
	for len(ids) < n {
		urls := make([]string, min(500, n-len(ids)))
		for i := range urls {
			urls[i] = fmt.Sprintf("http://127.0.0.1:9/p/%d.jpg", len(ids)+i)
		}
		var created struct{ Photos []photo }
		require.Equal(b, http.StatusCreated, Call(b, http.MethodPost, api+"/photos", map[string]any{"urls": urls}, &created))
		for _, p := range created.Photos {
			ids = append(ids, p.UUID)
		}
	}

	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024}, Timeout: 30 * time.Second}
	get := func(i int) (*http.Request, error) {
		return http.NewRequestWithContext(context.Background(), http.MethodGet, api+"/photos/"+ids[i%len(ids)], nil)
	}
	process := func(i int) (*http.Request, error) {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, api+"/photos/process",
			bytes.NewReader([]byte(`{"uuids":["`+ids[i]+`"]}`)))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
		}
		return req, err
	}
	// A short warm-up opens connections and fills caches.
	_ = openLoop(client, get, rps/4, rps/10)
	b.ResetTimer()
	for _, ep := range []struct {
		name string
		req  func(int) (*http.Request, error)
		want int
	}{{"get", get, http.StatusOK}, {"process", process, http.StatusAccepted}} {
		r := openLoop(client, ep.req, n, rps)
		b.ReportMetric(r.pct(50), ep.name+"-p50-ms")
		b.ReportMetric(r.pct(99), ep.name+"-p99-ms")
		b.ReportMetric(float64(r.ok[ep.want])/r.elapsed.Seconds(), ep.name+"-req/s")
		errs := 0
		for code, c := range r.ok {
			if code != ep.want {
				errs += c
			}
		}
		b.ReportMetric(float64(errs), ep.name+"-errors")
		b.Logf("%s: %d requests at %d/s: p50 %.2f ms, p99 %.2f ms, %.0f ok/s, statuses %v",
			ep.name, n, rps, r.pct(50), r.pct(99), float64(r.ok[ep.want])/r.elapsed.Seconds(), r.ok)
	}
}

type loadResult struct {
	lat     []time.Duration
	ok      map[int]int // responses by status; -1: transport errors
	elapsed time.Duration
}

func (r loadResult) pct(p int) float64 {
	if len(r.lat) == 0 {
		return 0
	}
	return float64(r.lat[min(len(r.lat)*p/100, len(r.lat)-1)]) / float64(time.Millisecond)
}

// openLoop sends n requests at rate per second, each at its scheduled
// time in its own goroutine, and measures each from that time to the end
// of its response body.
func openLoop(client *http.Client, mk func(int) (*http.Request, error), n, rate int) loadResult {
	lat := make([]time.Duration, n)
	codes := make([]int, n)
	var wg sync.WaitGroup
	interval := time.Second / time.Duration(max(rate, 1))
	start := time.Now()
	for i := range n {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, err := mk(i)
			if err != nil {
				codes[i] = -1
				return
			}
			resp, err := client.Do(req)
			if err != nil {
				codes[i], lat[i] = -1, time.Since(due)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			codes[i], lat[i] = resp.StatusCode, time.Since(due)
		}()
	}
	wg.Wait()
	r := loadResult{ok: map[int]int{}, elapsed: time.Since(start)}
	for i := range n {
		r.ok[codes[i]]++
		r.lat = append(r.lat, lat[i])
	}
	sort.Slice(r.lat, func(i, j int) bool { return r.lat[i] < r.lat[j] })
	return r
}

func envInt(tb testing.TB, k string, def int) int {
	tb.Helper()
	v := os.Getenv(k)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	require.NoError(tb, err, k)
	return n
}
