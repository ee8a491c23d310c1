package e2e

import (
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// BenchmarkJob10k runs a job of 10,000 small images (1,000 stores of 10)
// through the real pipeline and, while it runs, measures GET /jobs/{id}
// and GET /api/status: it reports the job's images/s and the p50/p99 of
// both status queries. b.N is ignored beyond 1 (one job per run).
func BenchmarkJob10k(b *testing.B) {
	env := NewEnv(b)
	src, _ := countingServer(b, encodeJPEG(b, 160, 120))
	api := env.StartPipeline(1)
	groups := storeGroups(src.URL, 1000, 10)
	b.ResetTimer()
	start := time.Now()
	var created struct {
		JobID string `json:"job_id"`
	}
	require.Equal(b, http.StatusAccepted, Call(b, http.MethodPost, api+"/jobs", map[string]any{"groups": groups}, &created))
	var native, retail []time.Duration
	for {
		t0 := time.Now()
		var j jobView
		require.Equal(b, http.StatusOK, Call(b, http.MethodGet, api+"/jobs/"+created.JobID+"?limit=100", nil, &j))
		native = append(native, time.Since(t0))
		t0 = time.Now()
		require.Equal(b, http.StatusOK, Call(b, http.MethodGet, api+"/api/status?jobid="+created.JobID, nil, nil))
		retail = append(retail, time.Since(t0))
		if j.Status != "ongoing" {
			require.Equal(b, "completed", j.Status)
			break
		}
		require.Less(b, time.Since(start), 15*time.Minute, "job not done")
		time.Sleep(50 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	pct := func(d []time.Duration, p int) float64 {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return float64(d[len(d)*p/100]) / float64(time.Millisecond)
	}
	b.ReportMetric(10000/elapsed.Seconds(), "images/s")
	b.ReportMetric(pct(native, 50), "jobs-p50-ms")
	b.ReportMetric(pct(native, 99), "jobs-p99-ms")
	b.ReportMetric(pct(retail, 50), "status-p50-ms")
	b.ReportMetric(pct(retail, 99), "status-p99-ms")
}
