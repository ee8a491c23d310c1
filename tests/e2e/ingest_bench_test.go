package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
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
// achieved, the errors and the CPU time per request of each process
// (ingest-api, Postgres, RabbitMQ, the load generator). b.N is ignored
// beyond 1.
func BenchmarkIngestAPILoad(b *testing.B) {
	rps := envInt(b, "INGEST_LOAD_RPS", 2000)
	secs := envInt(b, "INGEST_LOAD_SECONDS", 5)
	n := rps * secs
	env := NewEnv(b)
	env.APIAddr = FreeAddr(b)
	env.Start("ingest-api", "HTTP_ADDR="+env.APIAddr)
	api := "http://" + env.APIAddr

	// n pending photos, and as many again as a second's warm-up takes: one
	// POST /process each, so every request does the real work (a state
	// change and an outbox row), none is a no-op.
	warm := rps
	var ids []string
	for len(ids) < n+warm {
		urls := make([]string, min(500, n+warm-len(ids)))
		for i := range urls {
			urls[i] = fmt.Sprintf("http://127.0.0.1:9/p/%d.jpg", len(ids)+i)
		}
		var created struct{ Photos []photo }
		require.Equal(b, http.StatusCreated, Call(b, http.MethodPost, api+"/photos", map[string]any{"urls": urls}, &created))
		for _, p := range created.Photos {
			ids = append(ids, p.UUID)
		}
	}

	get := func(i int) []byte {
		return []byte("GET /photos/" + ids[i%len(ids)] + " HTTP/1.1\r\nHost: ingest-api\r\n\r\n")
	}
	process := func(i int) []byte {
		body := `{"uuids":["` + ids[warm+i] + `"]}`
		return []byte("POST /photos/process HTTP/1.1\r\nHost: ingest-api\r\nContent-Type: application/json\r\n" +
			"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	}
	warmProcess := func(i int) []byte { return process(i - warm) } // the first warm photos
	b.ResetTimer()
	for _, ep := range []struct {
		name string
		req  func(int) []byte
		warm func(int) []byte
		want int
	}{{"get", get, get, http.StatusOK}, {"process", process, warmProcess, http.StatusAccepted}} {
		// A second at the full rate first, not measured: a deployment that
		// serves 2,000 requests a second has its connections open and its
		// pools grown, and that steady state is what is measured. (The
		// first second's p99 is logged too: the service's first second at
		// this rate, cold.)
		w := openLoop(b, env.APIAddr, ep.warm, warm, rps)
		b.Logf("%s warm-up: %d requests at %d/s: p50 %.2f ms, p99 %.2f ms", ep.name, warm, rps, w.pct(50), w.pct(99))
		cpu := readCPU(env)
		r := openLoop(b, env.APIAddr, ep.req, n, rps)
		reportCPUPer(b, cpu, readCPU(env), n, ep.name)
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

// loadConns is how many keep-alive connections the load generator keeps
// open: enough that the server, not the generator, is what limits.
const loadConns = 64

// openLoop sends n requests to addr at rate per second, request i being
// the raw HTTP/1.1 request mk(i), and measures each from its scheduled
// time to the end of its response. Requests wait for a free connection
// (of loadConns keep-alive ones) when every connection is busy, and that
// wait counts in their latency. The generator is lean (raw requests, no
// http.Client) because it shares the machine's cores with the server it
// measures.
func openLoop(tb testing.TB, addr string, mk func(int) []byte, n, rate int) loadResult {
	tb.Helper()
	lat := make([]time.Duration, n)
	codes := make([]int, n)
	due := make([]time.Time, n)
	queue := make(chan int, n)
	var wg sync.WaitGroup
	for range loadConns {
		conn, err := net.Dial("tcp", addr)
		require.NoError(tb, err)
		wg.Go(func() {
			defer func() { _ = conn.Close() }()
			br := bufio.NewReader(conn)
			for i := range queue {
				codes[i] = -1
				if conn == nil {
					if conn, err = net.Dial("tcp", addr); err != nil {
						conn, lat[i] = nil, time.Since(due[i])
						continue
					}
					br.Reset(conn)
				}
				if _, err := conn.Write(mk(i)); err != nil {
					_ = conn.Close()
					conn, lat[i] = nil, time.Since(due[i])
					continue
				}
				resp, err := http.ReadResponse(br, nil)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
				}
				lat[i] = time.Since(due[i])
				if err != nil || resp.Close {
					_ = conn.Close()
					conn = nil
				}
				if err == nil {
					codes[i] = resp.StatusCode
				}
			}
		})
	}
	interval := time.Second / time.Duration(max(rate, 1))
	start := time.Now()
	for i := range n {
		due[i] = start.Add(time.Duration(i) * interval)
		if d := time.Until(due[i]); d > 0 {
			time.Sleep(d)
		}
		queue <- i
	}
	close(queue)
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
