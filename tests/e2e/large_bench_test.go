package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// BenchmarkEndToEndLarge pushes b.N large photos (make bench: 200) through
// the pipeline: the largest JPEG of the make bench corpus
// ($PHOTOPIPE_CORPUS), or a 4000x3000 JPEG made here without it. Besides
// photos/s and latency it reports the pipeline's overhead over rendering
// the same photo in process (thumbbench render, as many goroutines as the
// resizer has rendering workers, on the same machine): how much the
// services, RabbitMQ and Postgres cost on top of the resizing itself.
//
// The machine may be shared, so the in-process rate is measured right
// before and right after the pipeline, and the two count as one run:
// load that comes or goes while the pipeline runs weighs on both sides
// alike instead of on the pipeline alone. inprocess-cpu-ms/photo is
// thumbbench's CPU time per photo, to compare with cpu-ms/photo-total,
// which load on the machine distorts far less than rates.
func BenchmarkEndToEndLarge(b *testing.B) {
	path, img := largePhoto(b)
	bin := buildThumbbench(b)
	n := min(max(b.N, 10), 60)
	before := renderInProcess(b, bin, path, n)
	rate := benchEndToEnd(b, img, 1, 0)
	after := renderInProcess(b, bin, path, n)
	inProcess := before.add(after)
	b.ReportMetric(inProcess.rate(), "inprocess-photos/s")
	b.ReportMetric(inProcess.cpuPerPhoto(), "inprocess-cpu-ms/photo")
	b.ReportMetric((inProcess.rate()/rate-1)*100, "overhead-%")
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

// buildThumbbench builds thumbbench and returns its path.
func buildThumbbench(tb testing.TB) string {
	tb.Helper()
	root, err := filepath.Abs("../..")
	require.NoError(tb, err)
	bin := filepath.Join(tb.TempDir(), "thumbbench")
	build := exec.Command("go", "build", "-o", bin, "./services/resizer/cmd/thumbbench")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(tb, err, "%s", out)
	return bin
}

// inProcessRun is what one thumbbench render run took.
type inProcessRun struct {
	photos int
	wall   time.Duration // rendering, as thumbbench reports it
	cpu    time.Duration // user + system time of the whole process
}

func (r inProcessRun) add(o inProcessRun) inProcessRun {
	return inProcessRun{photos: r.photos + o.photos, wall: r.wall + o.wall, cpu: r.cpu + o.cpu}
}

func (r inProcessRun) rate() float64 { return float64(r.photos) / r.wall.Seconds() }

func (r inProcessRun) cpuPerPhoto() float64 {
	return float64(r.cpu) / float64(time.Millisecond) / float64(r.photos)
}

// renderInProcess renders path n times with bin (thumbbench) with one
// goroutine per CPU, the resizer's default rendering workers.
func renderInProcess(tb testing.TB, bin, path string, n int) inProcessRun {
	tb.Helper()
	run := exec.Command(bin, "render", "-out", tb.TempDir(), "-repeat", strconv.Itoa(n),
		"-parallel", strconv.Itoa(runtime.NumCPU()), path)
	out, err := run.CombinedOutput()
	require.NoError(tb, err, "%s", out)
	// "rendered N images in D: R images/s"
	f := strings.Fields(strings.TrimSpace(string(out)))
	require.GreaterOrEqual(tb, len(f), 6, "%s", out)
	photos, err := strconv.Atoi(f[1])
	require.NoError(tb, err, "%s", out)
	wall, err := time.ParseDuration(strings.TrimSuffix(f[4], ":"))
	require.NoError(tb, err, "%s", out)
	require.Equal(tb, n, photos, "%s", out)
	tb.Logf("in process: %s", strings.TrimSpace(string(out)))
	ps := run.ProcessState
	return inProcessRun{photos: photos, wall: wall, cpu: ps.UserTime() + ps.SystemTime()}
}
