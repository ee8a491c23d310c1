package health_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/shared/health"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// TestServe serves the probes and an extra route, reports failing checks
// by name, and stops when its context ends.
func TestServe(t *testing.T) {
	t.Parallel()
	dbErr := errors.New("migrations pending")
	checks := []health.Check{
		{Name: "broker", Func: func(context.Context) error { return nil }},
		{Name: "database", Func: func(context.Context) error { return dbErr }},
	}
	ctx, cancel := context.WithCancel(t.Context())
	bound := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- health.Serve(ctx, "127.0.0.1:0", checks, bound, health.Route{Pattern: "/metrics",
			Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "up 1\n") })})
	}()
	base := "http://" + <-bound

	code, _ := get(t, base+"/healthz")
	require.Equal(t, http.StatusOK, code)
	code, body := get(t, base+"/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	var ready struct {
		Status string
		Checks map[string]string
	}
	require.NoError(t, json.Unmarshal([]byte(body), &ready))
	require.Equal(t, "not_ready", ready.Status)
	require.Equal(t, map[string]string{"broker": "ok", "database": "migrations pending"}, ready.Checks)
	code, body = get(t, base+"/metrics")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "up 1\n", body)

	require.ErrorContains(t, health.Probe(t.Context(), base[len("http://"):]), "status 503")
	cancel()
	require.NoError(t, <-done)
}
