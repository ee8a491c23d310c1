package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sample is one line of the Prometheus text format: a series and its value.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// scrapeMetrics reads p's /metrics (served on its health address).
func scrapeMetrics(tb testing.TB, p *proc) []sample {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.health+"/metrics", nil)
	require.NoError(tb, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(tb, err)
	defer resp.Body.Close()
	require.Equal(tb, http.StatusOK, resp.StatusCode)
	var out []sample
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		require.Positive(tb, i, "metric line %q", line)
		v, err := strconv.ParseFloat(line[i+1:], 64)
		require.NoError(tb, err, "metric line %q", line)
		series := line[:i]
		s := sample{name: series, labels: map[string]string{}, value: v}
		if j := strings.IndexByte(series, '{'); j >= 0 {
			s.name = series[:j]
			// Label values here never hold `",` or escapes.
			for _, kv := range strings.Split(strings.TrimSuffix(series[j+1:], "}"), "\",") {
				k, v, ok := strings.Cut(kv, "=\"")
				require.True(tb, ok, "metric line %q", line)
				s.labels[k] = strings.TrimSuffix(v, "\"")
			}
		}
		out = append(out, s)
	}
	require.NoError(tb, sc.Err())
	return out
}

// value sums the samples named name whose labels include labels ("k", "v"
// pairs); found is false when there is none.
func value(samples []sample, name string, labels ...string) (sum float64, found bool) {
next:
	for _, s := range samples {
		if s.name != name {
			continue
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if s.labels[labels[i]] != labels[i+1] {
				continue next
			}
		}
		sum += s.value
		found = true
	}
	return sum, found
}

// flakySources serves files, counting the bytes of every 200 answer:
// "flaky-*" answer 503 the first time, "down-*" always.
type flakySources struct {
	files  map[string][]byte
	served atomic.Int64
	mu     sync.Mutex
	seen   map[string]int
}

func (s *flakySources) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/")
	s.mu.Lock()
	s.seen[name]++
	n := s.seen[name]
	s.mu.Unlock()
	if strings.HasPrefix(name, "down-") || (strings.HasPrefix(name, "flaky-") && n == 1) {
		http.Error(w, "try later", http.StatusServiceUnavailable)
		return
	}
	b, ok := s.files[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	n, _ = w.Write(b)
	s.served.Add(int64(n))
}

// TestMetrics runs photos with every outcome through the pipeline and
// checks what each service's /metrics says about them: good photos, one
// whose source is missing (a permanent failure), one whose source fails
// once (retried by the bus, then fine) and one whose source never answers
// (retried, then dead-lettered).
func TestMetrics(t *testing.T) {
	env := NewEnv(t)
	// A failing source is a transient error here, so the bus retries it
	// once and then dead-letters it.
	env.Extra["DOWNLOAD_RETRIES"] = "0"
	env.Extra["DOWNLOAD_DEAD_LETTER_SOURCE_FAILURES"] = "true"
	env.Extra["RETRY_MAX"] = "1"
	env.Extra["RETRY_INITIAL"] = "20ms"
	env.Extra["RETRY_MAX_INTERVAL"] = "50ms"
	const good = 3
	src := &flakySources{files: map[string][]byte{}, seen: map[string]int{}}
	for i := range good {
		src.files[fmt.Sprintf("good-%d.jpg", i)] = encodeJPEG(t, 400+100*i, 300)
	}
	src.files["flaky-1.png"] = encodePNG(t, 500, 200)
	srv := httptest.NewServer(src)
	t.Cleanup(srv.Close)
	api := env.StartPipeline(1)

	urls := []string{srv.URL + "/flaky-1.png", srv.URL + "/missing.jpg", srv.URL + "/down-1.jpg"}
	for i := range good {
		urls = append(urls, fmt.Sprintf("%s/good-%d.jpg", srv.URL, i))
	}
	var created struct{ Photos []photo }
	require.Equal(t, http.StatusCreated, Call(t, http.MethodPost, api+"/photos", map[string]any{"urls": urls, "process": true}, &created))
	require.Len(t, created.Photos, len(urls))
	var finishing []string
	var downID string
	for _, p := range created.Photos {
		if strings.HasSuffix(p.URL, "/down-1.jpg") {
			downID = p.UUID
		} else {
			finishing = append(finishing, p.UUID)
		}
	}
	final := waitFinal(t, api, finishing, 90*time.Second)
	completed := 0
	for _, p := range final {
		if p.Status == "completed" {
			completed++
		} else {
			assert.True(t, strings.HasSuffix(p.URL, "/missing.jpg"), "%s is %s", p.URL, p.Status)
		}
	}
	require.Equal(t, good+1, completed)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var p deadLetterPhoto
		assert.Equal(c, http.StatusOK, Call(t, http.MethodGet, api+"/photos/"+downID, nil, &p))
		assert.NotNil(c, p.DeadLetter, "the photo whose source is down waits in a dead-letter queue")
	}, 30*time.Second, 100*time.Millisecond)

	proc1 := func(name string) *proc {
		ps := env.Procs(name)
		require.Len(t, ps, 1)
		return ps[0]
	}
	handled := func(samples []sample, handler, outcome string) float64 {
		v, _ := value(samples, "photopipe_messages_handled_total", "handler", handler, "outcome", outcome)
		return v
	}

	// Downloader: every outcome, the bytes it read, its dead letter.
	dl := proc1("downloader")
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		m := scrapeMetrics(t, dl)
		assert.Equal(c, float64(good+1), handled(m, "downloader.download", "ok"))
		assert.Equal(c, float64(1), handled(m, "downloader.download", "permanent_failure"))
		assert.Equal(c, float64(2), handled(m, "downloader.download", "retried"), "flaky once, down once")
		assert.Equal(c, float64(1), handled(m, "downloader.download", "dead_lettered"))
		assert.Zero(c, handled(m, "downloader.download", "requeued"))
		n, _ := value(m, "photopipe_message_handling_seconds_count", "handler", "downloader.download")
		assert.Equal(c, float64(good+3), n, "one duration per message")
		bytes, ok := value(m, "photopipe_downloaded_bytes_total", "service", "downloader")
		assert.True(c, ok)
		assert.Equal(c, float64(src.served.Load()), bytes, "bytes downloaded = bytes the sources served")
		depth, ok := value(m, "photopipe_dead_letter_messages", "queue", "dead-letter.downloader")
		assert.True(c, ok)
		assert.Equal(c, float64(1), depth)
	}, 20*time.Second, 500*time.Millisecond)
	require.Positive(t, src.served.Load())

	// Resizer: the images that reached it, each stage once per image.
	rs := proc1("resizer")
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		m := scrapeMetrics(t, rs)
		assert.Equal(c, float64(good+1), handled(m, "resizer.render", "ok"))
		assert.Zero(c, handled(m, "resizer.render", "retried"))
		for _, stage := range []string{"decode", "resize", "encode"} {
			n, ok := value(m, "photopipe_resize_stage_seconds_count", "service", "resizer", "stage", stage)
			assert.True(c, ok, stage)
			assert.Equal(c, float64(good+1), n, stage)
			sum, _ := value(m, "photopipe_resize_stage_seconds_sum", "stage", stage)
			assert.Positive(c, sum, stage)
		}
		depth, _ := value(m, "photopipe_dead_letter_messages", "queue", "dead-letter.resizer")
		assert.Zero(c, depth)
	}, 20*time.Second, 500*time.Millisecond)

	// Recorder: every event it saw, applied.
	rec := proc1("recorder")
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		m := scrapeMetrics(t, rec)
		// It consumes only the events that end a photo (and marks).
		assert.Zero(c, handled(m, "recorder.requested", "ok"))
		assert.Zero(c, handled(m, "recorder.downloaded", "ok"))
		assert.Equal(c, float64(good+1), handled(m, "recorder.completed", "ok"))
		assert.Equal(c, float64(1), handled(m, "recorder.failed", "ok"))
		assert.Equal(c, float64(1), handled(m, "recorder.dead-lettered", "ok"))
		dead, _ := value(m, "photopipe_messages_handled_total", "outcome", "dead_lettered")
		assert.Zero(c, dead)
	}, 20*time.Second, 500*time.Millisecond)

	// ingest-api: photos by status and its HTTP requests.
	ing := proc1("ingest-api")
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		m := scrapeMetrics(t, ing)
		for status, want := range map[string]int{"completed": good + 1, "failed": 1, "processing": 1, "pending": 0} {
			n, ok := value(m, "photopipe_photos", "service", "ingest-api", "status", status)
			assert.True(c, ok, status)
			assert.Equal(c, float64(want), n, status)
		}
		n, _ := value(m, "photopipe_http_requests_total", "method", "POST", "route", "/photos", "status", "201")
		assert.Equal(c, float64(1), n)
		n, _ = value(m, "photopipe_http_requests_total", "method", "GET", "route", "/photos/:uuid", "status", "200")
		assert.GreaterOrEqual(c, n, float64(len(urls)))
		n, _ = value(m, "photopipe_http_request_duration_seconds_count", "method", "GET", "route", "/photos/:uuid")
		assert.GreaterOrEqual(c, n, float64(len(urls)))
	}, 20*time.Second, 500*time.Millisecond)
}
