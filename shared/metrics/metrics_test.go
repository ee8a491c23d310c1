package metrics_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/shared/bus"
	"github.com/photopipe/photopipe/shared/metrics"
)

func scrape(t *testing.T, r *metrics.Registry) string {
	t.Helper()
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	body, err := io.ReadAll(rec.Body)
	require.NoError(t, err)
	return string(body)
}

func TestMessages(t *testing.T) {
	t.Parallel()
	r := metrics.New("resizer")
	m, err := metrics.NewMessages(r)
	require.NoError(t, err)
	m.MessageRetried("resizer.render")
	m.MessageHandled("resizer.render", bus.OutcomeOK, 20*time.Millisecond)
	m.MessageHandled("resizer.render", bus.OutcomeOK, 30*time.Millisecond)
	m.MessageHandled("resizer.render", bus.OutcomeDeadLettered, time.Second)

	require.NoError(t, testutil.GatherAndCompare(r.Gatherer(), strings.NewReader(`
# HELP photopipe_messages_handled_total Handler runs by outcome: ok, permanent_failure (PhotoFailed published, message acknowledged), retried (a transient error; the message is handled again), dead_lettered, requeued (back to its queue: cancelled by a stop, or the dead-letter queue was unreachable). Every message ends in exactly one of ok, permanent_failure, dead_lettered and requeued.
# TYPE photopipe_messages_handled_total counter
photopipe_messages_handled_total{handler="resizer.render",outcome="dead_lettered",service="resizer"} 1
photopipe_messages_handled_total{handler="resizer.render",outcome="ok",service="resizer"} 2
photopipe_messages_handled_total{handler="resizer.render",outcome="retried",service="resizer"} 1
`), "photopipe_messages_handled_total"))
	body := scrape(t, r)
	require.Contains(t, body, `photopipe_message_handling_seconds_count{handler="resizer.render",outcome="ok",service="resizer"} 2`)
	require.Contains(t, body, "go_goroutines")

	// A second registration on the same registry fails; another registry
	// (another service in the same test process) is independent.
	_, err = metrics.NewMessages(r)
	require.Error(t, err)
	_, err = metrics.NewMessages(metrics.New("downloader"))
	require.NoError(t, err)
}

func TestHTTPBoundsLabels(t *testing.T) {
	t.Parallel()
	r := metrics.New("ingest-api")
	h, err := metrics.NewHTTP(r)
	require.NoError(t, err)
	h.ObserveRequest("GET", "/photos/:uuid", 200, time.Millisecond)
	h.ObserveRequest("GET", "/photos/:uuid", 404, time.Millisecond)
	h.ObserveRequest("GET", "", 404, time.Millisecond)
	h.ObserveRequest("BREW", "", 404, time.Millisecond)
	body := scrape(t, r)
	for _, line := range []string{
		`photopipe_http_requests_total{method="GET",route="/photos/:uuid",service="ingest-api",status="200"} 1`,
		`photopipe_http_requests_total{method="GET",route="/photos/:uuid",service="ingest-api",status="404"} 1`,
		`photopipe_http_requests_total{method="GET",route="unmatched",service="ingest-api",status="404"} 1`,
		`photopipe_http_requests_total{method="other",route="unmatched",service="ingest-api",status="404"} 1`,
		`photopipe_http_request_duration_seconds_count{method="GET",route="/photos/:uuid",service="ingest-api"} 2`,
	} {
		require.Contains(t, body, line)
	}
}

func TestPipelineMeasures(t *testing.T) {
	t.Parallel()
	r := metrics.New("resizer")
	s, err := metrics.NewStages(r)
	require.NoError(t, err)
	s.Observe(metrics.StageDecode, 10*time.Millisecond)
	s.Observe(metrics.StageDecode, 20*time.Millisecond)
	s.Observe(metrics.StageEncode, time.Millisecond)
	b, err := metrics.NewDownloadedBytes(r)
	require.NoError(t, err)
	b.Add(1000)
	b.Add(24)
	body := scrape(t, r)
	require.Contains(t, body, `photopipe_resize_stage_seconds_count{service="resizer",stage="decode"} 2`)
	require.Contains(t, body, `photopipe_resize_stage_seconds_sum{service="resizer",stage="decode"} 0.03`)
	require.Contains(t, body, `photopipe_resize_stage_seconds_count{service="resizer",stage="encode"} 1`)
	require.Contains(t, body, `photopipe_downloaded_bytes_total{service="resizer"} 1024`)
}

func TestGaugesAreCachedAndGapOnError(t *testing.T) {
	t.Parallel()
	r := metrics.New("ingest-api")
	var reads atomic.Int32
	fail := atomic.Bool{}
	require.NoError(t, metrics.NewPhotoStatuses(r, []string{"pending", "processing", "completed", "failed"},
		func(context.Context) (map[string]int, error) {
			reads.Add(1)
			if fail.Load() {
				return nil, errors.New("database down")
			}
			return map[string]int{"completed": 3, "failed": 1}, nil
		}, time.Second))
	depth := 7
	require.NoError(t, metrics.NewDeadLetterDepth(r, "dead-letter.resizer", func(_ context.Context, q string) (int, error) {
		require.Equal(t, "dead-letter.resizer", q)
		return depth, nil
	}, time.Hour))

	body := scrape(t, r)
	require.Contains(t, body, `photopipe_photos{service="ingest-api",status="completed"} 3`)
	require.Contains(t, body, `photopipe_photos{service="ingest-api",status="failed"} 1`)
	require.Contains(t, body, `photopipe_photos{service="ingest-api",status="pending"} 0`)
	require.Contains(t, body, `photopipe_dead_letter_messages{queue="dead-letter.resizer",service="ingest-api"} 7`)
	scrape(t, r)
	require.Equal(t, int32(1), reads.Load(), "a second scrape within the ttl reads nothing")

	depth = 8 // cached for an hour: still 7
	time.Sleep(1100 * time.Millisecond)
	fail.Store(true)
	body = scrape(t, r)
	require.Equal(t, int32(2), reads.Load())
	require.NotContains(t, body, "photopipe_photos{", "a failed count leaves a gap, not a stale value")
	require.Contains(t, body, `photopipe_dead_letter_messages{queue="dead-letter.resizer",service="ingest-api"} 7`)
}
