package app_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/services/downloader/internal/app"
	"github.com/photopipe/photopipe/services/downloader/internal/fetch"
	"github.com/photopipe/photopipe/shared/event"
)

// BenchmarkHandleLarge downloads a large JPEG from a loopback server and
// stores it, as the downloader does for every photo: the CPU it reports
// (cpu-ms/op, this process: client and server) is the downloader's share
// of the pipeline's cost per photo. $PHOTOPIPE_LARGE_JPEG names the file
// (make bench's corpus); without it a noisy 4000x3000 JPEG is made.
func BenchmarkHandleLarge(b *testing.B) {
	var img []byte
	if p := os.Getenv("PHOTOPIPE_LARGE_JPEG"); p != "" {
		var err error
		img, err = os.ReadFile(p)
		require.NoError(b, err)
	} else {
		img = noisyJPEG(b, 4000, 3000)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write(img)
	}))
	b.Cleanup(srv.Close)
	f := newFixture(b)
	client := fetch.New(fetch.Config{
		MaxBytes: 50 << 20, ConnectTimeout: time.Second, HeaderTimeout: time.Second, Timeout: time.Minute,
		UserAgent: "bench", AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	})
	d := app.New(client, f.store, f.pub, slog.New(slog.DiscardHandler), 0, time.Millisecond)
	b.SetBytes(int64(len(img)))
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := range b.N {
		e := &event.PhotoRequested{Header: event.NewHeader(fmt.Sprintf("photo-%d", i), 1), URL: srv.URL + "/large.jpg"}
		require.NoError(b, d.Handle(b.Context(), e))
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}

// cpuTime is the user and system CPU time of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
