package config

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// env returns a getenv over vars.
func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	c, err := Load(env(nil))
	require.NoError(t, err)
	require.Equal(t, "./var/storage", c.StorageDir)
	require.Empty(t, c.HealthAddr)
	require.Equal(t, 16, c.Workers)
	require.Equal(t, int64(50<<20), c.MaxBytes)
	require.Equal(t, 5*time.Second, c.ConnectTimeout)
	require.Equal(t, 10*time.Second, c.HeaderTimeout)
	require.Equal(t, 60*time.Second, c.Timeout)
	require.Equal(t, 5, c.MaxRedirects)
	require.Equal(t, 2, c.Retries)
	require.Equal(t, 500*time.Millisecond, c.RetryDelay)
	require.Equal(t, "photopipe-downloader/1", c.UserAgent)
	require.Equal(t, 1, c.Bus.Prefetch, "the downloader's own prefetch default")
	require.Equal(t, "json", c.Log.Format)
	require.Equal(t, "info", c.Log.Level)
}

func TestLoadOverrides(t *testing.T) {
	t.Parallel()
	c, err := Load(env(map[string]string{
		"STORAGE_DIR": "/data", "WORKERS": "4", "DOWNLOAD_MAX_BYTES": "10MiB", "DOWNLOAD_TIMEOUT": "30s",
		"DOWNLOAD_RETRIES": "0", "DOWNLOAD_RETRY_DELAY": "0s", "DOWNLOAD_MAX_REDIRECTS": "0",
	}))
	require.NoError(t, err)
	require.Equal(t, "/data", c.StorageDir)
	require.Equal(t, 4, c.Workers)
	require.Equal(t, int64(10<<20), c.MaxBytes)
	require.Equal(t, 30*time.Second, c.Timeout)
	require.Zero(t, c.Retries)
	require.Zero(t, c.RetryDelay)
	require.Zero(t, c.MaxRedirects)
}

func TestLoadReportsEveryProblem(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		vars map[string]string
		want []string // variables the error names
	}{
		{
			name: "malformed and invalid values together",
			vars: map[string]string{"WORKERS": "0", "DOWNLOAD_MAX_BYTES": "abc", "DOWNLOAD_TIMEOUT": "5"},
			want: []string{"WORKERS", "DOWNLOAD_MAX_BYTES", "DOWNLOAD_TIMEOUT"},
		},
		{
			name: "invalid values only",
			vars: map[string]string{"WORKERS": "-1", "DOWNLOAD_MAX_BYTES": "0", "DOWNLOAD_RETRIES": "-1", "SHUTDOWN_TIMEOUT": "0s"},
			want: []string{"WORKERS", "DOWNLOAD_MAX_BYTES", "DOWNLOAD_RETRIES", "SHUTDOWN_TIMEOUT"},
		},
		{
			name: "malformed values only",
			vars: map[string]string{"WORKERS": "many", "DOWNLOAD_HEADER_TIMEOUT": "soon"},
			want: []string{"WORKERS", "DOWNLOAD_HEADER_TIMEOUT"},
		},
		{
			name: "non-positive timeout",
			vars: map[string]string{"DOWNLOAD_CONNECT_TIMEOUT": "0s"},
			want: []string{"DOWNLOAD_CONNECT_TIMEOUT"},
		},
		{
			name: "every timeout",
			vars: map[string]string{"DOWNLOAD_CONNECT_TIMEOUT": "0s", "DOWNLOAD_HEADER_TIMEOUT": "-1s", "DOWNLOAD_TIMEOUT": "0"},
			want: []string{"DOWNLOAD_CONNECT_TIMEOUT", "DOWNLOAD_HEADER_TIMEOUT", "DOWNLOAD_TIMEOUT"},
		},
		{
			name: "negative redirects and delay",
			vars: map[string]string{"DOWNLOAD_MAX_REDIRECTS": "-1", "DOWNLOAD_RETRY_DELAY": "-1s"},
			want: []string{"DOWNLOAD_MAX_REDIRECTS", "DOWNLOAD_RETRY_DELAY"},
		},
		{
			name: "bus settings",
			vars: map[string]string{"AMQP_URL": "http://broker", "WORKERS": "0"},
			want: []string{"AMQP_URL", "WORKERS"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Load(env(tc.vars))
			require.Error(t, err)
			joined, ok := err.(interface{ Unwrap() []error })
			require.Truef(t, ok, "want one joined error, got %T", err)
			for _, name := range tc.want {
				require.Contains(t, err.Error(), name+":", "the error names %s", name)
			}
			require.Len(t, lines(joined), len(tc.want), "one line per problem: %v", err)
		})
	}
}

// lines flattens a joined error into its leaf messages.
func lines(err interface{ Unwrap() []error }) []string {
	var out []string
	for _, e := range err.Unwrap() {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			out = append(out, lines(j)...)
			continue
		}
		out = append(out, strings.TrimSpace(e.Error()))
	}
	return out
}
