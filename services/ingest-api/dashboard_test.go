package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3filter"
	legacyrouter "github.com/getkin/kin-openapi/routers/legacy"
	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/services/ingest-api/internal/ginhttp"
)

type statsJSON struct {
	Photos map[string]int `json:"photos"`
	Jobs   map[string]int `json:"jobs"`
	At     time.Time      `json:"at"`
}

type jobSummary struct {
	JobID  string         `json:"job_id"`
	Status string         `json:"status"`
	Total  int            `json:"total"`
	Counts map[string]int `json:"counts"`
	Groups map[string]int `json:"groups"`
}

// TestDashboardReads runs the dashboard's read endpoints against Postgres:
// counts per status, photos newest first (any status or one, paged),
// jobs by status.
func TestDashboardReads(t *testing.T) {
	t.Parallel()
	h := startAPI(t, map[string]string{"MAX_PHOTOS_PER_REQUEST": "20"})
	var urls []string
	for i := range 7 {
		urls = append(urls, fmt.Sprintf("http://example.com/%d.jpg", i))
	}
	created := h.create(jsonList(urls...))
	ids := make([]string, len(created))
	for i, p := range created {
		ids[i] = p.UUID
		// Distinct creation times, oldest first, so that the order is known.
		h.exec(`UPDATE photos SET created_at = now() - make_interval(mins => $2) WHERE uuid = $1`, p.UUID, 100-i)
	}
	h.exec(`UPDATE photos SET status = 'completed' WHERE uuid = ANY($1)`, ids[0:3])
	h.exec(`UPDATE photos SET status = 'failed', failure_stage = 'resize', failure_code = 'decode_error',
		failure_message = 'broken' WHERE uuid = $1`, ids[3])
	h.exec(`INSERT INTO photo_thumbnails (photo_uuid, rendition, page, width, height, url, format, bytes)
		VALUES ($1, 'thumb', 0, 32, 24, $2, 'jpeg', 9)`, ids[2], "thumbnails/"+ids[2]+"/thumb.jpg")
	job := h.do(http.MethodPost, "/jobs", `{"groups": [{"key": "S1", "urls": ["http://example.com/j.jpg"]}]}`)
	require.Equal(t, http.StatusAccepted, job.Status, "body: %s", job.Body)
	jobID := decodeJSON[struct {
		JobID string `json:"job_id"`
	}](t, job).JobID

	newest := func(list []string) []string {
		out := slices.Clone(list)
		slices.Reverse(out)
		return out
	}
	uuidsOf := func(r response) []string {
		var ps []photoJSON
		require.NoError(t, json.Unmarshal(r.Body, &ps), "body: %s", r.Body)
		out := make([]string, len(ps))
		for i, p := range ps {
			out[i] = p.UUID
		}
		return out
	}

	t.Run("stats", func(t *testing.T) {
		r := h.do(http.MethodGet, "/stats", "")
		require.Equal(t, http.StatusOK, r.Status, "body: %s", r.Body)
		s := decodeJSON[statsJSON](t, r)
		// 7 photos plus the job's one (processing: requested with the job).
		require.Equal(t, map[string]int{"pending": 3, "processing": 1, "completed": 3, "failed": 1}, s.Photos)
		require.Equal(t, map[string]int{"ongoing": 1, "completed": 0, "failed": 0}, s.Jobs)
		require.WithinDuration(t, time.Now(), s.At, time.Minute)
	})
	t.Run("completed newest first with thumbnails", func(t *testing.T) {
		r := h.do(http.MethodGet, "/photos?status=completed", "")
		require.Equal(t, http.StatusOK, r.Status, "body: %s", r.Body)
		require.Equal(t, newest(ids[0:3]), uuidsOf(r))
		var ps []struct {
			Thumbnails []struct {
				FileURL string `json:"file_url"`
			} `json:"thumbnails"`
		}
		require.NoError(t, json.Unmarshal(r.Body, &ps))
		require.Equal(t, "/files/thumbnails/"+ids[2]+"/thumb.jpg", ps[0].Thumbnails[0].FileURL)
	})
	t.Run("failed with reasons", func(t *testing.T) {
		r := h.do(http.MethodGet, "/photos?status=failed&limit=5", "")
		require.Equal(t, http.StatusOK, r.Status, "body: %s", r.Body)
		require.Contains(t, string(r.Body), `"code":"decode_error"`)
		require.Contains(t, string(r.Body), `"message":"broken"`)
		require.Empty(t, r.Header.Get("X-Next-Cursor"))
	})
	t.Run("any status, paged", func(t *testing.T) {
		var got []string
		cursor := ""
		for range 10 {
			r := h.do(http.MethodGet, "/photos?limit=3"+cursor, "")
			require.Equal(t, http.StatusOK, r.Status, "body: %s", r.Body)
			got = append(got, uuidsOf(r)...)
			next := r.Header.Get("X-Next-Cursor")
			if next == "" {
				break
			}
			cursor = "&before=" + next
		}
		// The job's photo is the newest (created now).
		require.Len(t, got, 8)
		require.Equal(t, newest(ids), got[1:])
	})
	t.Run("jobs", func(t *testing.T) {
		r := h.do(http.MethodGet, "/jobs?status=ongoing", "")
		require.Equal(t, http.StatusOK, r.Status, "body: %s", r.Body)
		jobs := decodeJSON[[]jobSummary](t, r)
		require.Len(t, jobs, 1)
		require.Equal(t, jobID, jobs[0].JobID)
		require.Equal(t, 1, jobs[0].Total)
		require.Equal(t, 1, jobs[0].Counts["in_progress"])
		require.Equal(t, 1, jobs[0].Groups["total"])
		r = h.do(http.MethodGet, "/jobs?status=completed", "")
		require.Equal(t, "[]", strings.TrimSpace(string(r.Body)))
	})
	t.Run("bad requests", func(t *testing.T) {
		requireError(t, h.do(http.MethodGet, "/photos?status=done", ""), http.StatusBadRequest, "invalid_status")
		requireError(t, h.do(http.MethodGet, "/photos?limit=0", ""), http.StatusBadRequest, "invalid_limit")
		requireError(t, h.do(http.MethodGet, "/photos?limit=100000", ""), http.StatusBadRequest, "invalid_limit")
		requireError(t, h.do(http.MethodGet, "/photos?before=x", ""), http.StatusBadRequest, "invalid_cursor")
		requireError(t, h.do(http.MethodGet, "/jobs?status=pending", ""), http.StatusBadRequest, "invalid_status")
	})
}

// TestWebPagesWithoutKey checks that the dashboard, the docs page and the
// API document load without an API key while the data needs one.
func TestWebPagesWithoutKey(t *testing.T) {
	t.Parallel()
	key := "api-key-0123456789abcdef0123"
	h := startAPI(t, map[string]string{"AUTH_DISABLED": "false", "API_KEYS": key})
	for _, path := range []string{"/dashboard", "/docs", "/openapi.json", "/ui/dashboard.js", "/ui/style.css"} {
		r := h.do(http.MethodGet, path, "")
		require.Equal(t, http.StatusOK, r.Status, "%s: %s", path, r.Body)
	}
	for _, path := range []string{"/stats", "/photos", "/jobs?status=ongoing"} {
		requireError(t, h.do(http.MethodGet, path, ""), http.StatusUnauthorized, "missing_api_key")
		r := h.do(http.MethodGet, path, "", "Authorization", "Bearer "+key)
		require.Equal(t, http.StatusOK, r.Status, "%s: %s", path, r.Body)
	}
}

// TestOpenAPIOperationsServed calls every operation of the served document
// on the running service, as main wires it: none may fall through to "no
// route" or "method not allowed" (the route-by-route comparison is in
// ginhttp; this one also sees what main registers itself).
func TestOpenAPIOperationsServed(t *testing.T) {
	t.Parallel()
	h := startAPI(t, nil)
	r := h.do(http.MethodGet, "/openapi.json", "")
	require.Equal(t, http.StatusOK, r.Status)
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(r.Body, &doc))
	sample := strings.NewReplacer("{uuid}", "0b4c7a52-6d0e-4a8e-9a43-2f3d2f1c9b11", "{id}", "0b4c7a52-6d0e-4a8e-9a43-2f3d2f1c9b11",
		"{key}", "thumbnails/none/thumb.jpg", "{service}", "resizer", "{file}", "style.css")
	n := 0
	for path, item := range doc.Paths {
		if _, other := item["servers"]; other {
			continue // served on another listener (HEALTH_ADDR)
		}
		for method := range item {
			m := strings.ToUpper(method)
			switch m {
			case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
			default:
				continue
			}
			n++
			res := h.do(m, sample.Replace(path), "")
			if m == http.MethodHead {
				require.NotEqual(t, http.StatusMethodNotAllowed, res.Status, "%s %s", m, path)
				continue
			}
			require.NotContains(t, string(res.Body), `"no_route"`, "%s %s", m, path)
			require.NotContains(t, string(res.Body), `"method_not_allowed"`, "%s %s", m, path)
		}
	}
	require.Greater(t, n, 25)
}

// TestResponsesMatchOpenAPI sends requests to the running service and
// checks requests and answers against the served OpenAPI document, so that
// the documented shapes stay the real ones.
func TestResponsesMatchOpenAPI(t *testing.T) {
	t.Parallel()
	h := startAPI(t, nil)
	ctx := t.Context()
	doc, err := ginhttp.LoadOpenAPI(ctx)
	require.NoError(t, err)
	router, err := legacyrouter.NewRouter(doc)
	require.NoError(t, err)

	created := h.create(jsonList("http://example.com/a.jpg", "http://example.com/b.jpg"))
	done := created[0].UUID
	h.exec(`UPDATE photos SET status = 'completed', attempt = 1, status_attempt = 1, completed_at = now(),
		original_key = $2, content_type = 'image/jpeg', bytes = 1234, width = 640, height = 480, pages = 1
		WHERE uuid = $1`, done, "originals/"+done+"/a.jpg")
	h.exec(`INSERT INTO photo_thumbnails (photo_uuid, rendition, page, width, height, url, format, bytes)
		VALUES ($1, 'thumb', 0, 320, 240, $2, 'jpeg', 99)`, done, "thumbnails/"+done+"/thumb.jpg")
	h.exec(`UPDATE photos SET status = 'failed', attempt = 1, status_attempt = 1, failure_stage = 'download',
		failure_code = 'download_http_status', failure_message = '404', failure_retryable = false WHERE uuid = $1`, created[1].UUID)
	job := h.do(http.MethodPost, "/jobs", `{"groups": [{"key": "S1", "urls": ["http://example.com/j.jpg"]}]}`)
	require.Equal(t, http.StatusAccepted, job.Status, "body: %s", job.Body)
	jobID := decodeJSON[struct {
		JobID string `json:"job_id"`
	}](t, job).JobID

	for _, tc := range []struct{ method, path, body string }{
		{http.MethodPost, "/photos", `{"urls": ["http://example.com/c.jpg"], "process": true}`},
		{http.MethodPost, "/photos", `["http://example.com/d.jpg"]`},
		{http.MethodPost, "/photos", `{"urls": ["ftp://example.com/x"]}`},
		{http.MethodGet, "/photos/" + done, ""},
		{http.MethodGet, "/photos/" + created[1].UUID, ""},
		{http.MethodGet, "/photos/0b4c7a52-6d0e-4a8e-9a43-2f3d2f1c9b11", ""},
		{http.MethodGet, "/photos?limit=10", ""},
		{http.MethodGet, "/photos?status=failed", ""},
		{http.MethodGet, "/photos/pending?limit=1", ""},
		{http.MethodPost, "/photos/process", `{"uuids": ["` + done + `"], "reprocess": true}`},
		{http.MethodGet, "/stats", ""},
		{http.MethodGet, "/jobs?status=ongoing", ""},
		{http.MethodGet, "/jobs/" + jobID, ""},
		{http.MethodGet, "/api/status?jobid=" + jobID, ""},
		{http.MethodGet, "/upload/" + done + "/status", ""},
		{http.MethodGet, "/api/thumb/" + done, ""},
		{http.MethodGet, "/admin/dead-letters", ""},
		{http.MethodGet, "/admin/dead-letters/resizer", ""},
		{http.MethodGet, "/healthz", ""},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req, err := http.NewRequestWithContext(ctx, tc.method, h.base+tc.path, body)
			require.NoError(t, err)
			if tc.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			route, params, err := router.FindRoute(req)
			require.NoError(t, err, "the document has the route")
			in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
				Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
			require.NoError(t, openapi3filter.ValidateRequest(ctx, in), "the request is valid")
			if tc.body != "" {
				req.Body = io.NopCloser(strings.NewReader(tc.body))
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			raw, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			err = openapi3filter.ValidateResponse(ctx, &openapi3filter.ResponseValidationInput{
				RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
				Body: io.NopCloser(bytes.NewReader(raw)),
			})
			require.NoError(t, err, "status %d, body %s", resp.StatusCode, raw)
		})
	}
}
