package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// countingServer serves one JPEG at every path except those containing
// "missing" (404), and counts requests per path.
func countingServer(t testing.TB, img []byte) (*httptest.Server, func(string) int) {
	t.Helper()
	var mu sync.Mutex
	hits := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits[r.URL.Path]++
		mu.Unlock()
		if strings.Contains(r.URL.Path, "missing") {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(img)
	}))
	t.Cleanup(srv.Close)
	return srv, func(path string) int {
		mu.Lock()
		defer mu.Unlock()
		return hits[path]
	}
}

type jobView struct {
	JobID        string         `json:"job_id"`
	Status       string         `json:"status"`
	Total        int            `json:"total"`
	Counts       map[string]int `json:"counts"`
	FailedGroups []struct {
		Key, Error string
	} `json:"failed_groups"`
	Results []struct {
		PhotoID     string `json:"photo_id"`
		Group       string `json:"group"`
		URL         string `json:"url"`
		Status      string `json:"status"`
		Width       int    `json:"width"`
		Height      int    `json:"height"`
		Perimeter   int    `json:"perimeter"`
		Thumbnail   string `json:"thumbnail"`
		FailureCode string `json:"failure_code"`
	} `json:"results"`
}

func waitJob(t *testing.T, api, id string, timeout time.Duration) jobView {
	t.Helper()
	var j jobView
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, http.StatusOK, Call(t, http.MethodGet, api+"/jobs/"+id+"?limit=1000", nil, &j))
		assert.NotEqual(c, "ongoing", j.Status)
	}, timeout, 200*time.Millisecond)
	return j
}

// TestJobGroupsStopAtFirstFailure: a store whose second of five images is a
// 404 stops there (images 3-5 are never fetched and end skipped), other
// stores complete, and the job ends failed naming the store.
func TestJobGroupsStopAtFirstFailure(t *testing.T) {
	env := NewEnv(t)
	src, hits := countingServer(t, encodeJPEG(t, 400, 300))
	api := env.StartPipeline(1)

	bad := []string{src.URL + "/a1.jpg", src.URL + "/a2-missing.jpg", src.URL + "/a3.jpg", src.URL + "/a4.jpg", src.URL + "/a5.jpg"}
	req := map[string]any{"groups": []map[string]any{
		{"key": "A", "urls": bad},
		{"key": "B", "urls": []string{src.URL + "/b1.jpg", src.URL + "/b2.jpg", src.URL + "/b3.jpg"}},
		{"key": "C", "urls": []string{src.URL + "/c1.jpg"}},
	}}
	var created struct {
		JobID string `json:"job_id"`
	}
	require.Equal(t, http.StatusAccepted, Call(t, http.MethodPost, api+"/jobs", req, &created))
	j := waitJob(t, api, created.JobID, 60*time.Second)

	assert.Equal(t, "failed", j.Status)
	assert.Equal(t, 9, j.Total)
	assert.Equal(t, map[string]int{"completed": 5, "failed": 1, "skipped": 3, "in_progress": 0}, j.Counts)
	require.Len(t, j.FailedGroups, 1)
	assert.Equal(t, "A", j.FailedGroups[0].Key)
	assert.Contains(t, j.FailedGroups[0].Error, "404")
	for _, p := range []string{"/a3.jpg", "/a4.jpg", "/a5.jpg"} {
		assert.Zero(t, hits(p), "%s of the failed store is never fetched", p)
	}
	require.Len(t, j.Results, 9)
	for _, r := range j.Results {
		switch {
		case r.Group == "A" && strings.HasSuffix(r.URL, "a1.jpg"), r.Group != "A":
			assert.Equal(t, "completed", r.Status, r.URL)
			assert.Equal(t, 400, r.Width)
			assert.Equal(t, 300, r.Height)
			assert.Equal(t, 1400, r.Perimeter)
			assert.Contains(t, r.Thumbnail, "thumbnails/"+r.PhotoID)
		case strings.Contains(r.URL, "missing"):
			assert.Equal(t, "failed", r.Status)
			assert.Equal(t, "download_http_status", r.FailureCode)
		default:
			assert.Equal(t, "failed", r.Status, r.URL)
			assert.Equal(t, "skipped", r.FailureCode, r.URL)
		}
	}
	// Pagination.
	var page jobView
	require.Equal(t, http.StatusOK, Call(t, http.MethodGet, api+"/jobs/"+created.JobID+"?offset=8&limit=5", nil, &page))
	assert.Len(t, page.Results, 1)
	assert.Equal(t, http.StatusNotFound, Call(t, http.MethodGet, api+"/jobs/00000000-0000-0000-0000-000000000000", nil, nil))
	assert.Equal(t, http.StatusBadRequest, Call(t, http.MethodGet, api+"/jobs/nope", nil, nil))
	assert.Equal(t, http.StatusBadRequest, Call(t, http.MethodPost, api+"/jobs", map[string]any{"groups": []any{}}, nil))
}

// TestRetailPulseAPI checks the exact shapes and status codes of the Retail
// Pulse routes and the store master rules.
func TestRetailPulseAPI(t *testing.T) {
	env := NewEnv(t)
	env.Extra["STORE_MASTER_CSV"] = "../../../shared/data/retailpulse/StoreMasterAssignment.csv"
	src, _ := countingServer(t, encodeJPEG(t, 200, 100))
	api := env.StartPipeline(1)

	post := func(path, body string) (int, map[string]any, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, api+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var out map[string]any
		_ = jsonDecode(resp.Body, &out)
		return resp.StatusCode, out, resp.Header.Get("Content-Type")
	}
	good := fmt.Sprintf(`{"count": 2, "visits": [
		{"store_id": "RP00001", "image_url": ["%[1]s/x1.jpg", "%[1]s/x2.jpg"], "visit_time": "2024-01-01T10:00:00"},
		{"store_id": "S00339218", "image_url": ["%[1]s/y1.jpg"], "visit_time": "2024-01-01T11:00:00"}]}`, src.URL)
	for _, path := range []string{"/api/submit/", "/api/submit"} {
		code, out, ct := post(path, good)
		require.Equal(t, http.StatusCreated, code, path)
		assert.Contains(t, ct, "application/json")
		assert.NotEmpty(t, out["job_id"])
	}
	bad := map[string]string{
		"missing count":   `{"visits": []}`,
		"missing visits":  `{"count": 1}`,
		"count mismatch":  fmt.Sprintf(`{"count": 3, "visits": [{"store_id": "RP00001", "image_url": ["%s/a.jpg"], "visit_time": "t"}]}`, src.URL),
		"empty image_url": `{"count": 1, "visits": [{"store_id": "RP00001", "image_url": [], "visit_time": "t"}]}`,
		"missing store":   fmt.Sprintf(`{"count": 1, "visits": [{"image_url": ["%s/a.jpg"], "visit_time": "t"}]}`, src.URL),
		"malformed JSON":  `{"count": `,
	}
	for name, body := range bad {
		code, out, _ := post("/api/submit/", body)
		assert.Equal(t, http.StatusBadRequest, code, name)
		assert.NotEmpty(t, out["error"], name)
		assert.Len(t, out, 1, "%s: only {\"error\"}", name)
	}

	code, out, _ := post("/api/submit/", good)
	require.Equal(t, http.StatusCreated, code)
	id := out["job_id"].(string)
	var status map[string]any
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		status = map[string]any{}
		assert.Equal(c, http.StatusOK, Call(t, http.MethodGet, api+"/api/status?jobid="+id, nil, &status))
		assert.Equal(c, "failed", status["status"])
	}, 60*time.Second, 200*time.Millisecond)
	assert.Equal(t, id, status["job_id"])
	assert.Equal(t, []any{map[string]any{"store_id": "S00339218", "error": "store not found"}}, status["error"])

	var j jobView
	require.Equal(t, http.StatusOK, Call(t, http.MethodGet, api+"/jobs/"+id, nil, &j))
	assert.Equal(t, 2, j.Counts["completed"], "the known store's images complete")
	assert.Equal(t, 1, j.Counts["skipped"])

	var e map[string]any
	assert.Equal(t, http.StatusBadRequest, Call(t, http.MethodGet, api+"/api/status?jobid=00000000-0000-0000-0000-000000000000", nil, &e))
	assert.NotEmpty(t, e["error"])
	assert.Equal(t, http.StatusBadRequest, Call(t, http.MethodGet, api+"/api/status", nil, &e))
	assert.Equal(t, http.StatusBadRequest, Call(t, http.MethodGet, api+"/api/status?jobid=junk", nil, &e))

	// A job whose stores are all known completes.
	code, out, _ = post("/api/submit", fmt.Sprintf(`{"count": 1, "visits": [{"store_id": "RP00002", "image_url": ["%s/z.jpg"], "visit_time": "t"}]}`, src.URL))
	require.Equal(t, http.StatusCreated, code)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		status = map[string]any{}
		assert.Equal(c, http.StatusOK, Call(t, http.MethodGet, api+"/api/status?jobid="+out["job_id"].(string), nil, &status))
		assert.Equal(c, "completed", status["status"])
	}, 60*time.Second, 200*time.Millisecond)
	assert.Len(t, status, 2, "completed: only status and job_id")
}

// storeGroups is a POST /jobs body's groups: stores groups (keys S0000,
// S0001, ...) of perStore image URLs under base each.
func storeGroups(base string, stores, perStore int) []map[string]any {
	groups := make([]map[string]any, 0, stores)
	for s := range stores {
		urls := make([]string, perStore)
		for i := range urls {
			urls[i] = fmt.Sprintf("%s/s%d/%d.jpg", base, s, i)
		}
		groups = append(groups, map[string]any{"key": fmt.Sprintf("S%04d", s), "urls": urls})
	}
	return groups
}

// TestJobOfAThousandImages runs a 1,000-image job (100 stores of 10)
// through the real pipeline.
func TestJobOfAThousandImages(t *testing.T) {
	env := NewEnv(t)
	src, _ := countingServer(t, encodeJPEG(t, 120, 90))
	api := env.StartPipeline(1)
	groups := storeGroups(src.URL, 100, 10)
	start := time.Now()
	var created struct {
		JobID string `json:"job_id"`
	}
	require.Equal(t, http.StatusAccepted, Call(t, http.MethodPost, api+"/jobs", map[string]any{"groups": groups}, &created))
	j := waitJob(t, api, created.JobID, 4*time.Minute)
	t.Logf("1,000-image job finished in %s", time.Since(start).Round(time.Millisecond))
	assert.Equal(t, "completed", j.Status)
	assert.Equal(t, map[string]int{"completed": 1000, "failed": 0, "skipped": 0, "in_progress": 0}, j.Counts)
	assert.Len(t, j.Results, 1000)
}
