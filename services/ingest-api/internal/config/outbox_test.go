package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestOutboxSettings(t *testing.T) {
	t.Parallel()
	c, err := Load(getenv(map[string]string{"AUTH_DISABLED": "true"}))
	require.NoError(t, err)
	require.Equal(t, 200, c.OutboxBatch)
	require.Equal(t, time.Second, c.OutboxPollInterval)
	require.Equal(t, 10*time.Millisecond, c.OutboxLinger)

	c, err = Load(getenv(map[string]string{"AUTH_DISABLED": "true", "OUTBOX_LINGER": "0s"}))
	require.NoError(t, err)
	require.Zero(t, c.OutboxLinger, "no lingering")

	for _, v := range []string{"-1ms", "2s"} {
		_, err = Load(getenv(map[string]string{"AUTH_DISABLED": "true", "OUTBOX_LINGER": v}))
		require.ErrorContains(t, err, "OUTBOX_LINGER: must be between 0 and OUTBOX_POLL_INTERVAL", v)
	}
}
