package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func getenv(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestSecurityDefaults(t *testing.T) {
	t.Parallel()
	c, err := Load(getenv(map[string]string{"API_KEYS": "k1-0123456789abcdef"}))
	require.NoError(t, err)
	require.Equal(t, "development", c.AppEnv)
	require.Equal(t, []string{"k1-0123456789abcdef"}, c.APIKeys)
	require.Empty(t, c.AdminAPIKeys)
	require.False(t, c.AuthDisabled)
	require.InDelta(t, 100.0, c.RateLimitRPS, 0)
	require.Equal(t, 200, c.RateLimitBurst)
	require.Equal(t, 10000, c.RateLimitClients)
	require.Empty(t, c.TrustedProxies)
}

func TestSecuritySettings(t *testing.T) {
	t.Parallel()
	const key = "secret-key-0123456789"
	cases := []struct {
		name string
		env  map[string]string
		// errs are substrings of the error; none means it loads.
		errs []string
	}{
		{name: "no key: loads (serving refuses it, migrate and healthcheck need none)", env: nil},
		{name: "auth disabled explicitly", env: map[string]string{"AUTH_DISABLED": "true"}},
		{name: "admin keys alone", env: map[string]string{"ADMIN_API_KEYS": key}},
		{name: "several keys", env: map[string]string{"API_KEYS": key + ", other-key-0123456789", "ADMIN_API_KEYS": "admin-" + key}},
		{name: "auth disabled in production", env: map[string]string{"AUTH_DISABLED": "true", "APP_ENV": "production"},
			errs: []string{"AUTH_DISABLED: authentication cannot be disabled when APP_ENV=production"}},
		{name: "production with keys", env: map[string]string{"APP_ENV": "production", "API_KEYS": key}},
		{name: "auth disabled and keys set", env: map[string]string{"AUTH_DISABLED": "true", "API_KEYS": key},
			errs: []string{"AUTH_DISABLED: authentication is disabled but API_KEYS or ADMIN_API_KEYS are set"}},
		{name: "unknown environment", env: map[string]string{"APP_ENV": "prod", "API_KEYS": key},
			errs: []string{`APP_ENV: "prod"`}},
		{name: "short keys", env: map[string]string{"API_KEYS": key + ",abc123", "ADMIN_API_KEYS": "xyz789"},
			errs: []string{"API_KEYS: key 2 is shorter than 16 characters", "ADMIN_API_KEYS: key 1 is shorter than 16 characters"}},
		{name: "rate limit off", env: map[string]string{"API_KEYS": key, "RATE_LIMIT_RPS": "0"}},
		{name: "fractional rate", env: map[string]string{"API_KEYS": key, "RATE_LIMIT_RPS": "0.5"}},
		{name: "rate not a number", env: map[string]string{"API_KEYS": key, "RATE_LIMIT_RPS": "fast"},
			errs: []string{"RATE_LIMIT_RPS"}},
		{name: "negative rate", env: map[string]string{"API_KEYS": key, "RATE_LIMIT_RPS": "-1"},
			errs: []string{"RATE_LIMIT_RPS, RATE_LIMIT_BURST, RATE_LIMIT_CLIENTS"}},
		{name: "rate NaN", env: map[string]string{"API_KEYS": key, "RATE_LIMIT_RPS": "NaN"},
			errs: []string{"RATE_LIMIT_RPS, RATE_LIMIT_BURST, RATE_LIMIT_CLIENTS"}},
		{name: "zero burst", env: map[string]string{"API_KEYS": key, "RATE_LIMIT_BURST": "0"},
			errs: []string{"RATE_LIMIT_RPS, RATE_LIMIT_BURST, RATE_LIMIT_CLIENTS"}},
		{name: "trusted proxies", env: map[string]string{"API_KEYS": key, "TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.10"}},
		{name: "bad trusted proxy", env: map[string]string{"API_KEYS": key, "TRUSTED_PROXIES": "10.0.0.0/8,proxy.local"},
			errs: []string{`TRUSTED_PROXIES: "proxy.local"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Load(getenv(tc.env))
			if len(tc.errs) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, want := range tc.errs {
				require.ErrorContains(t, err, want)
			}
			for _, k := range []string{key, "abc123", "xyz789"} {
				require.NotContains(t, err.Error(), k, "messages never quote a key")
			}
		})
	}
}
