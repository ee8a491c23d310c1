package config_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/services/recorder/internal/config"
)

func load(env map[string]string) (config.Config, error) {
	return config.Load(func(k string) string { return env[k] })
}

func TestCallbackDefaults(t *testing.T) {
	t.Parallel()
	c, err := load(nil)
	require.NoError(t, err)
	cb := c.Callbacks
	require.Empty(t, cb.Secret)
	require.Equal(t, 10*time.Second, cb.Timeout)
	require.Equal(t, 10, cb.MaxAttempts)
	require.Equal(t, 5*time.Second, cb.BackoffMin)
	require.Equal(t, time.Hour, cb.BackoffMax)
	require.Equal(t, 720*time.Hour, cb.Retention, "30 days")
	require.Empty(t, cb.AllowedNetworks, "only public addresses by default")
}

func TestCallbackNetworksFollowDownloads(t *testing.T) {
	t.Parallel()
	c, err := load(map[string]string{"DOWNLOAD_ALLOWED_NETWORKS": "127.0.0.0/8, 10.1.0.0/16"})
	require.NoError(t, err)
	require.Len(t, c.Callbacks.AllowedNetworks, 2, "the same rules as downloads")

	c, err = load(map[string]string{"DOWNLOAD_ALLOWED_NETWORKS": "127.0.0.0/8", "CALLBACK_ALLOWED_NETWORKS": "10.9.0.0/16"})
	require.NoError(t, err)
	require.Len(t, c.Callbacks.AllowedNetworks, 1)
	require.Equal(t, "10.9.0.0/16", c.Callbacks.AllowedNetworks[0].String())

	_, err = load(map[string]string{"CALLBACK_ALLOWED_NETWORKS": "localhost"})
	require.ErrorContains(t, err, "CALLBACK_ALLOWED_NETWORKS")
	_, err = load(map[string]string{"DOWNLOAD_ALLOWED_NETWORKS": "localhost"})
	require.ErrorContains(t, err, "DOWNLOAD_ALLOWED_NETWORKS")
}

func TestCallbackSettingsValidated(t *testing.T) {
	t.Parallel()
	_, err := load(map[string]string{
		"CALLBACK_TIMEOUT": "0s", "CALLBACK_MAX_ATTEMPTS": "0", "CALLBACK_BACKOFF_MIN": "10s",
		"CALLBACK_BACKOFF_MAX": "1s", "CALLBACK_WORKERS": "0", "CALLBACK_POLL_INTERVAL": "0s",
	})
	for _, name := range []string{"CALLBACK_TIMEOUT", "CALLBACK_MAX_ATTEMPTS", "CALLBACK_BACKOFF_MAX", "CALLBACK_WORKERS", "CALLBACK_POLL_INTERVAL"} {
		require.ErrorContains(t, err, name)
	}
}

func TestShutdownTimeout(t *testing.T) {
	t.Parallel()
	c, err := load(nil)
	require.NoError(t, err)
	require.Equal(t, 30*time.Second, c.ShutdownTimeout)
	c, err = load(map[string]string{"SHUTDOWN_TIMEOUT": "5s"})
	require.NoError(t, err)
	require.Equal(t, 5*time.Second, c.ShutdownTimeout)
	_, err = load(map[string]string{"SHUTDOWN_TIMEOUT": "0s"})
	require.ErrorContains(t, err, "SHUTDOWN_TIMEOUT: must be positive")
}

func TestCallbackRetention(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, value string
		want        time.Duration
		err         string
	}{
		{name: "a week", value: "168h", want: 168 * time.Hour},
		{name: "zero keeps forever", value: "0", want: 0},
		{name: "zero with a unit", value: "0s", want: 0},
		{name: "negative", value: "-1h", err: "CALLBACK_RETENTION: must not be negative"},
		{name: "not a duration", value: "30d", err: "CALLBACK_RETENTION"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := load(map[string]string{"CALLBACK_RETENTION": tc.value})
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, c.Callbacks.Retention)
		})
	}
}

func TestBatch(t *testing.T) {
	t.Parallel()
	c, err := load(nil)
	require.NoError(t, err)
	require.Equal(t, 128, c.Batch)
	require.Equal(t, 16, c.Workers, "enough handlers per topic for batches to form")
	c, err = load(map[string]string{"RECORD_BATCH": "1"})
	require.NoError(t, err)
	require.Equal(t, 1, c.Batch, "a transaction per event")
	_, err = load(map[string]string{"RECORD_BATCH": "0"})
	require.ErrorContains(t, err, "RECORD_BATCH")
}
