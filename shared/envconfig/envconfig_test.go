package envconfig

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestReader(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"S": " x ", "I": "42", "BADI": "4x", "D": "250ms", "BADD": "5", "B": "50MiB", "BADB": "-1",
		"L": "a, b,,c", "T": "yes", "BADT": "maybe",
	}
	r := New(func(k string) string { return env[k] })
	require.Equal(t, "x", r.String("S", "d"))
	require.Equal(t, "d", r.String("MISSING", "d"))
	require.Equal(t, 42, r.Int("I", 1))
	require.Equal(t, 250*time.Millisecond, r.Duration("D", time.Second))
	require.Equal(t, int64(50<<20), r.Bytes("B", 1))
	require.Equal(t, []string{"a", "b", "c"}, r.List("L", nil))
	require.True(t, r.Bool("T", false))
	require.NoError(t, r.Err())

	require.Equal(t, 1, r.Int("BADI", 1))
	require.Equal(t, time.Second, r.Duration("BADD", time.Second))
	require.Equal(t, int64(7), r.Bytes("BADB", 7))
	require.False(t, r.Bool("BADT", false))
	err := r.Err()
	require.Error(t, err)
	for _, name := range []string{"BADI", "BADD", "BADB", "BADT"} {
		require.Contains(t, err.Error(), name)
	}
}

func TestParseBytes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1048576", 1 << 20, true}, {"512KiB", 512 << 10, true}, {"2GB", 2 << 30, true},
		{"10 mib", 10 << 20, true}, {"", 0, false}, {"MiB", 0, false}, {"1.5MiB", 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseBytes(tc.in)
			if !tc.ok {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}
