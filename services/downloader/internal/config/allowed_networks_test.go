package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLoadAllowedNetworks(t *testing.T) {
	t.Parallel()
	c, err := Load(env(nil))
	require.NoError(t, err)
	require.Empty(t, c.AllowedNetworks, "no private range is allowed by default")

	c, err = Load(env(map[string]string{"DOWNLOAD_ALLOWED_NETWORKS": "127.0.0.0/8, 10.1.0.0/16,fd00::/8,127.0.0.2"}))
	require.NoError(t, err)
	var got []string
	for _, n := range c.AllowedNetworks {
		got = append(got, n.String())
	}
	require.Equal(t, []string{"127.0.0.0/8", "10.1.0.0/16", "fd00::/8", "127.0.0.2/32"}, got)

	_, err = Load(env(map[string]string{"DOWNLOAD_ALLOWED_NETWORKS": "10.0.0.0/8,intranet", "WORKERS": "0"}))
	require.ErrorContains(t, err, "DOWNLOAD_ALLOWED_NETWORKS")
	require.ErrorContains(t, err, `"intranet"`)
	require.ErrorContains(t, err, "WORKERS", "every problem is reported at once")
}
