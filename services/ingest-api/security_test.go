package main

// Component tests of authentication and rate limits: run() wired as in
// production, against the real PostgreSQL and RabbitMQ.

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/shared/testenv"
)

const (
	testAPIKey   = "component-api-key-0123456789"
	testAdminKey = "component-admin-key-0123456789"
)

func TestRunRefusesToStartWithoutKeys(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"no key, auth not disabled", map[string]string{}, []string{"API_KEYS", "ADMIN_API_KEYS", "AUTH_DISABLED=true"}},
		{"auth disabled in production", map[string]string{"AUTH_DISABLED": "true", "APP_ENV": "production"}, []string{"AUTH_DISABLED", "APP_ENV=production"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"HTTP_ADDR": "127.0.0.1:0", "STORAGE_DIR": t.TempDir()}
			for k, v := range tc.env {
				env[k] = v
			}
			bound := make(chan string, 1)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			err := run(ctx, nil, func(k string) string { return env[k] }, io.Discard, bound)
			require.Error(t, err)
			for _, w := range tc.want {
				require.ErrorContains(t, err, w)
			}
			require.Empty(t, bound, "it never listened")
		})
	}
}

func TestMigrateNeedsNoKeys(t *testing.T) {
	t.Parallel()
	env := map[string]string{"DATABASE_URL": testenv.Postgres(t), "STORAGE_DIR": t.TempDir(), "DB_CONNECT_TIMEOUT": "15s"}
	require.NoError(t, run(t.Context(), []string{"migrate"}, func(k string) string { return env[k] }, io.Discard, nil))
}

func TestRunWarnsWhenAuthIsDisabled(t *testing.T) {
	t.Parallel()
	h := startAPI(t, nil) // the component tests' default: AUTH_DISABLED=true
	require.Contains(t, h.logs.String(), `"level":"WARN","msg":"authentication is disabled`)
	require.Equal(t, http.StatusOK, h.do(http.MethodGet, "/photos/pending", "").Status)
}

func TestRunRequiresKeys(t *testing.T) {
	t.Parallel()
	h := startAPI(t, map[string]string{
		"AUTH_DISABLED": "", "API_KEYS": testAPIKey, "ADMIN_API_KEYS": testAdminKey,
		"RATE_LIMIT_RPS": "0.01", "RATE_LIMIT_BURST": "4",
	})
	bearer := func(k string) []string { return []string{"Authorization", "Bearer " + k} }

	require.Equal(t, http.StatusOK, h.do(http.MethodGet, "/healthz", "").Status)
	require.Equal(t, http.StatusOK, h.do(http.MethodGet, "/readyz", "").Status)
	r := h.do(http.MethodPost, "/photos", `{"url": "http://e.com/a.jpg"}`)
	requireError(t, r, http.StatusUnauthorized, "missing_api_key")
	require.Equal(t, `Bearer realm="photopipe"`, r.Header.Get("WWW-Authenticate"))
	r = h.do(http.MethodPost, "/photos", `{"url": "http://e.com/a.jpg"}`, bearer("not-a-key-not-a-key")...)
	requireError(t, r, http.StatusUnauthorized, "invalid_api_key")
	require.Zero(t, h.outboxRows()+len(h.drain()), "refused requests create nothing")

	// The key's budget: 4 at once (burst), then one every 100 s; refusals
	// (the 403) cost nothing.
	r = h.do(http.MethodPost, "/photos", `{"url": "http://e.com/a.jpg", "process": true}`, bearer(testAPIKey)...)
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	r = h.do(http.MethodGet, "/admin/dead-letters", "", bearer(testAPIKey)...)
	requireError(t, r, http.StatusForbidden, "admin_key_required")
	for range 3 {
		require.Equal(t, http.StatusOK, h.do(http.MethodGet, "/photos/pending", "", bearer(testAPIKey)...).Status)
	}
	r = h.do(http.MethodGet, "/photos/pending", "", bearer(testAPIKey)...)
	requireError(t, r, http.StatusTooManyRequests, "rate_limited")
	retry, err := strconv.Atoi(r.Header.Get("Retry-After"))
	require.NoError(t, err)
	require.InDelta(t, 100, retry, 5, "about 1/rps")

	r = h.do(http.MethodGet, "/admin/dead-letters", "", bearer(testAdminKey)...)
	require.Equal(t, http.StatusOK, r.Status, "the admin key has its own budget: %s", r.Body)

	logs := h.logs.String()
	require.NotContains(t, logs, testAPIKey)
	require.NotContains(t, logs, testAdminKey)
	require.NotContains(t, logs, "authentication is disabled")
}
