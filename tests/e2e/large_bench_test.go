package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// BenchmarkEndToEndLarge pushes b.N large photos (make bench: 200) through
// the pipeline: the largest JPEG of the make bench corpus
// ($PHOTOPIPE_CORPUS), or a 4000x3000 JPEG made here without it. Besides
// photos/s and latency it reports the pipeline's overhead over rendering
// the same photo in process (thumbbench render, as many goroutines as the
// resizer has workers, on the same machine): how much the services,
// RabbitMQ and Postgres cost on top of the resizing itself.
func BenchmarkEndToEndLarge(b *testing.B) {
	path, img := largePhoto(b)
	inProcess := renderInProcess(b, path, min(max(b.N, 10), 60))
	rate := benchEndToEnd(b, img, 1, 0)
	b.ReportMetric(inProcess, "inprocess-photos/s")
	b.ReportMetric((inProcess/rate-1)*100, "overhead-%")
}

// largePhoto returns the largest JPEG of $PHOTOPIPE_CORPUS, or writes one.
func largePhoto(tb testing.TB) (string, []byte) {
	tb.Helper()
	var best string
	var bestSize int64
	if dir := os.Getenv("PHOTOPIPE_CORPUS"); dir != "" {
		files, _ := filepath.Glob(filepath.Join(dir, "*.jpg"))
		for _, f := range files {
			if st, err := os.Stat(f); err == nil && st.Size() > bestSize {
				best, bestSize = f, st.Size()
			}
		}
	}
	if best == "" {
		best = filepath.Join(tb.TempDir(), "large.jpg")
		require.NoError(tb, os.WriteFile(best, encodeJPEG(tb, 4000, 3000), 0o644))
	}
	data, err := os.ReadFile(best)
	require.NoError(tb, err)
	tb.Logf("large photo: %s (%d KB)", best, len(data)/1024)
	return best, data
}

// renderInProcess builds thumbbench and renders path n times with one
// goroutine per CPU (the resizer's default workers): photos/s.
func renderInProcess(tb testing.TB, path string, n int) float64 {
	tb.Helper()
	root, err := filepath.Abs("../..")
	require.NoError(tb, err)
	bin := filepath.Join(tb.TempDir(), "thumbbench")
	build := exec.Command("go", "build", "-o", bin, "./services/resizer/cmd/thumbbench")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(tb, err, "%s", out)
	run := exec.Command(bin, "render", "-out", tb.TempDir(), "-repeat", strconv.Itoa(n),
		"-parallel", strconv.Itoa(runtime.NumCPU()), path)
	out, err = run.CombinedOutput()
	require.NoError(tb, err, "%s", out)
	// "rendered N images in D: R images/s"
	f := strings.Fields(strings.TrimSpace(string(out)))
	require.GreaterOrEqual(tb, len(f), 2, "%s", out)
	rate, err := strconv.ParseFloat(f[len(f)-2], 64)
	require.NoError(tb, err, "%s", out)
	tb.Logf("in process: %s", strings.TrimSpace(string(out)))
	return rate
}
