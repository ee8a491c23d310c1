package app

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/services/resizer/internal/imaging"
	"github.com/photopipe/photopipe/shared/event"
	"github.com/photopipe/photopipe/shared/imagetype"
	"github.com/photopipe/photopipe/shared/rendition"
	"github.com/photopipe/photopipe/shared/storage"
)

// largeOriginal is $PHOTOPIPE_LARGE_JPEG, or a 4000x3000 JPEG made here.
func largeOriginal(tb testing.TB) []byte {
	tb.Helper()
	if p := os.Getenv("PHOTOPIPE_LARGE_JPEG"); p != "" {
		data, err := os.ReadFile(p)
		require.NoError(tb, err)
		return data
	}
	return jpegOf(tb, 4000, 3000)
}

// BenchmarkHandleLarge handles PhotoDownloaded of a large stored JPEG
// (PHOTOPIPE_LARGE_JPEG, default a 4000x3000 one) from local storage: the
// resizer's own work per photo. BenchmarkRenderLarge is the rendering
// alone, as thumbbench does it; the difference in cpu-ms/op is what
// opening, storing and publishing cost.
func BenchmarkHandleLarge(b *testing.B) {
	img := largeOriginal(b)
	store, err := storage.NewLocal(b.TempDir())
	require.NoError(b, err)
	b.Cleanup(func() { _ = store.Close() })
	const photos = 16 // originals cycled through, as distinct files
	for i := range photos {
		_, err := store.Put(b.Context(), storage.OriginalKey(fmt.Sprint("photo-", i), "large.jpg"), bytes.NewReader(img))
		require.NoError(b, err)
	}
	r := New(store, &discardPublisher{}, slog.New(slog.DiscardHandler), rendition.DefaultPresets(), testLimits)
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := range b.N {
		id := fmt.Sprint("photo-", i%photos)
		e := &event.PhotoDownloaded{
			Header: event.NewHeader(id, 1), OriginalKey: storage.OriginalKey(id, "large.jpg"),
			ContentType: "image/jpeg", Bytes: int64(len(img)), Renditions: []string{"thumb"},
		}
		require.NoError(b, r.Handle(b.Context(), e))
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}

// BenchmarkRenderLarge renders the thumbnail of the same photo from an open
// file, as thumbbench does.
func BenchmarkRenderLarge(b *testing.B) {
	img := largeOriginal(b)
	path := b.TempDir() + "/large.jpg"
	require.NoError(b, os.WriteFile(path, img, 0o644))
	thumb := []rendition.Preset{rendition.DefaultPresets()["thumb"]}
	cpu0 := cpuTime()
	b.ResetTimer()
	for range b.N {
		f, err := os.Open(path)
		require.NoError(b, err)
		o, err := imagetype.ReadOrientation(f)
		require.NoError(b, err)
		_, err = imaging.RenderImage(f, thumb, o, testLimits)
		require.NoError(b, err)
		require.NoError(b, f.Close())
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}

type discardPublisher struct{}

func (discardPublisher) Publish(context.Context, any) error { return nil }

// cpuTime is the user and system CPU time of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
