package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAPIKeyFromEnvironment(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"", "admin-key-0123456789abcdef"} {
		got := make(chan string, 1)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got <- r.Header.Get("Authorization")
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"queues":[]}`))
		}))
		env := map[string]string{"PHOTOPIPE_API": srv.URL, "PHOTOPIPE_API_KEY": key}
		var out bytes.Buffer
		err := run(t.Context(), []string{"dlq", "list"}, func(k string) string { return env[k] }, nil, &out, srv.Client())
		srv.Close()
		require.NoError(t, err)
		if key == "" {
			require.Empty(t, <-got, "no key, no header")
			continue
		}
		require.Equal(t, "Bearer "+key, <-got)
	}
}
