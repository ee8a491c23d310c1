package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// callbackView is the "callback" of a photo or job as the API returns it.
type callbackView struct {
	URL           string     `json:"url"`
	Status        string     `json:"status"`
	NextAttemptAt *time.Time `json:"next_attempt_at"`
	LastError     string     `json:"last_error"`
	Attempts      []struct {
		Attempt    int       `json:"attempt"`
		At         time.Time `json:"at"`
		StatusCode int       `json:"status_code"`
		Error      string    `json:"error"`
		DurationMS int64     `json:"duration_ms"`
	} `json:"attempts"`
}

type withCallback struct {
	Callback *callbackView `json:"callback"`
}

func TestCallbackURLValidation(t *testing.T) {
	h := startAPI(t, map[string]string{"MAX_URL_LENGTH": "64"})
	for _, tc := range []struct{ name, url, want string }{
		{"not http", "ftp://hooks.example.com/x", "not an http or https URL"},
		{"relative", "/hooks/x", "not an http or https URL"},
		{"no host", "http://:8080/x", "has no host"},
		{"too long", "https://hooks.example.com/" + strings.Repeat("a", 64), "longer than 64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, _ := json.Marshal(map[string]any{"urls": []string{"https://example.com/a.jpg"}, "callback_url": tc.url})
			requireError(t, h.do(http.MethodPost, "/photos", string(body)), http.StatusBadRequest, "invalid_callback_url", "callback_url", tc.want)
			body, _ = json.Marshal(map[string]any{
				"groups": []map[string]any{{"key": "S1", "urls": []string{"https://example.com/a.jpg"}}}, "callback_url": tc.url,
			})
			requireError(t, h.do(http.MethodPost, "/jobs", string(body)), http.StatusBadRequest, "invalid_callback_url", "callback_url", tc.want)
		})
	}
	var n int
	require.NoError(t, h.db.QueryRow(context.Background(), "SELECT count(*) FROM photos").Scan(&n))
	require.Zero(t, n, "nothing registered")
}

// TestPhotoCallbackShown: the photo keeps its callback URL, and GET shows
// where the callback stands, with the tries the recorder recorded.
func TestPhotoCallbackShown(t *testing.T) {
	h := startAPI(t, nil)
	photos := h.create(`{"urls": ["https://example.com/a.jpg", "https://example.com/b.jpg"], "process": true,
		"callback_url": "https://hooks.example.com/photos?token=1"}`)
	require.Len(t, photos, 2)
	get := func(id string) callbackView {
		t.Helper()
		r := h.do(http.MethodGet, "/photos/"+id, "")
		require.Equal(t, http.StatusOK, r.Status, "body: %s", r.Body)
		v := decodeJSON[withCallback](t, r)
		require.NotNil(t, v.Callback, "body: %s", r.Body)
		return *v.Callback
	}
	cb := get(photos[0].UUID)
	require.Equal(t, "https://hooks.example.com/photos?token=1", cb.URL)
	require.Equal(t, "waiting", cb.Status)
	require.Empty(t, cb.Attempts)

	// Play the recorder: the photo finished and its callback was tried
	// twice, then delivered.
	id := photos[0].UUID
	h.exec(`UPDATE photos SET status = 'completed', status_attempt = 1 WHERE uuid = $1`, id)
	var cbID string
	require.NoError(t, h.db.QueryRow(context.Background(), `INSERT INTO callbacks
		(kind, subject_id, subject_attempt, url, payload, status, attempts, finished_at)
		VALUES ('photo', $1, 1, 'https://hooks.example.com/photos?token=1', '{}', 'delivered', 3, now()) RETURNING id`, id).Scan(&cbID))
	h.exec(`INSERT INTO callback_attempts (callback_id, attempt, started_at, duration_ms, status_code, error) VALUES
		($1, 1, now() - interval '2 s', 12, 500, 'receiver answered 500 Internal Server Error'),
		($1, 2, now() - interval '1 s', 10000, NULL, 'timed out after 10s'),
		($1, 3, now(), 8, 200, NULL)`, cbID)
	cb = get(id)
	require.Equal(t, "delivered", cb.Status)
	require.Nil(t, cb.NextAttemptAt)
	require.Len(t, cb.Attempts, 3)
	require.Equal(t, 500, cb.Attempts[0].StatusCode)
	require.Contains(t, cb.Attempts[0].Error, "500")
	require.Zero(t, cb.Attempts[1].StatusCode)
	require.Equal(t, int64(10000), cb.Attempts[1].DurationMS)
	require.Equal(t, 200, cb.Attempts[2].StatusCode)
	require.Empty(t, cb.Attempts[2].Error)
	require.Equal(t, []int{1, 2, 3}, []int{cb.Attempts[0].Attempt, cb.Attempts[1].Attempt, cb.Attempts[2].Attempt})

	// The recorder purged it (CALLBACK_RETENTION): expired, not waiting.
	h.exec(`DELETE FROM callbacks WHERE id = $1`, cbID)
	cb = get(id)
	require.Equal(t, "expired", cb.Status)
	require.Empty(t, cb.Attempts)
	// A new attempt is under way: its callback is waiting again.
	h.exec(`UPDATE photos SET attempt = 2 WHERE uuid = $1`, id)
	require.Equal(t, "waiting", get(id).Status)

	// A photo without a callback URL shows none.
	plain := h.create(`{"url": "https://example.com/c.jpg"}`)
	r := h.do(http.MethodGet, "/photos/"+plain[0].UUID, "")
	require.Nil(t, decodeJSON[withCallback](t, r).Callback, "body: %s", r.Body)
}

// TestJobCallback: POST /jobs and the Retail Pulse submit take a callback
// URL; a job that is final at once (every store unknown) has its callback
// queued by ingest-api itself, since the recorder never sees it finish.
func TestJobCallback(t *testing.T) {
	master := filepath.Join(t.TempDir(), "stores.csv")
	require.NoError(t, os.WriteFile(master, []byte("area_code,store_name,store_id\r\n7,Known,S1\r\n"), 0o600))
	h := startAPI(t, map[string]string{"STORE_MASTER_CSV": master})
	getJob := func(id string) callbackView {
		t.Helper()
		r := h.do(http.MethodGet, "/jobs/"+id, "")
		require.Equal(t, http.StatusOK, r.Status, "body: %s", r.Body)
		v := decodeJSON[withCallback](t, r)
		require.NotNil(t, v.Callback, "body: %s", r.Body)
		return *v.Callback
	}

	r := h.do(http.MethodPost, "/jobs", `{"groups": [{"key": "S1", "urls": ["https://example.com/a.jpg"]}],
		"callback_url": "https://hooks.example.com/jobs"}`)
	require.Equal(t, http.StatusAccepted, r.Status, "body: %s", r.Body)
	ongoing := decodeJSON[struct {
		JobID string `json:"job_id"`
	}](t, r).JobID
	cb := getJob(ongoing)
	require.Equal(t, "https://hooks.example.com/jobs", cb.URL)
	require.Equal(t, "waiting", cb.Status)

	r = h.do(http.MethodPost, "/api/submit", `{"count": 1, "visits": [{"store_id": "NOPE", "image_url": ["https://example.com/b.jpg"],
		"visit_time": "2026-01-01"}], "callback_url": "https://hooks.example.com/retail"}`)
	require.Equal(t, http.StatusCreated, r.Status, "body: %s", r.Body)
	failed := decodeJSON[struct {
		JobID string `json:"job_id"`
	}](t, r).JobID
	cb = getJob(failed)
	require.Equal(t, "pending", cb.Status, "queued with the job, which failed at once")
	require.NotNil(t, cb.NextAttemptAt)
	var payload []byte
	require.NoError(t, h.db.QueryRow(context.Background(),
		`SELECT payload FROM callbacks WHERE kind = 'job' AND subject_id = $1`, failed).Scan(&payload))
	var body struct {
		Type, ID, Status string
		Errors           []struct{ Group, Error string }
	}
	require.NoError(t, json.Unmarshal(payload, &body))
	require.Equal(t, "job", body.Type)
	require.Equal(t, failed, body.ID)
	require.Equal(t, "failed", body.Status)
	require.Len(t, body.Errors, 1)
	require.Equal(t, "NOPE", body.Errors[0].Group)
	require.Equal(t, "store not found", body.Errors[0].Error)

	h.exec(`DELETE FROM callbacks WHERE subject_id = $1`, failed)
	require.Equal(t, "expired", getJob(failed).Status, "purged (CALLBACK_RETENTION)")
}
