package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// Several runs of a benchmark give the median of each metric, and how many
// runs there were; a single run is reported as it is.
func TestParseBenchTakesMedians(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "bench.txt")
	require.NoError(t, os.WriteFile(path, []byte(`goos: linux
BenchmarkEndToEndTiny-2   	    1000	   3074643 ns/op	         5.550 cpu-ms/photo-total	       325.5 photos/s
BenchmarkEndToEndTiny-2   	    1000	   4534476 ns/op	         6.780 cpu-ms/photo-total	       220.6 photos/s
BenchmarkEndToEndTiny-2   	    1000	   3500000 ns/op	         6.000 cpu-ms/photo-total	       290.0 photos/s
BenchmarkJob10k-2   	       1	   1000 ns/op	         159.0 images/s
PASS
`), 0o644))
	got, err := parseBench(path)
	require.NoError(t, err)
	require.Equal(t, map[string]float64{"ns/op": 3500000, "cpu-ms/photo-total": 6.0, "photos/s": 290.0, "runs": 3}, got["EndToEndTiny"])
	require.Equal(t, map[string]float64{"ns/op": 1000, "images/s": 159}, got["Job10k"])
	require.Equal(t, 2.5, median([]float64{4, 1, 2, 3}))
}
