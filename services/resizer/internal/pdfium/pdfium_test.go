package pdfium

import (
	"context"
	"errors"
	"image"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/shared/event"
)

const raftPDF = "../../../../../shared/data/raft/Backend_Test_Raft.pdf"

func readRaft(tb testing.TB) []byte {
	tb.Helper()
	data, err := os.ReadFile(raftPDF)
	if errors.Is(err, os.ErrNotExist) {
		tb.Skipf("sample %s is absent", raftPDF)
	}
	require.NoError(tb, err)
	return data
}

// cache shares PDFium's compiled code between the tests' renderers, and
// between test runs and packages through a directory: compiling it takes
// seconds, most of a minute under the race detector.
var cache = TestCache()

// shared is one runtime for the tests that do not test its start.
var shared = sync.OnceValues(func() (*Renderer, error) {
	return New(Config{MemoryLimit: 256 << 20, Cache: cache}, slog.New(slog.DiscardHandler))
})

func sharedRenderer(tb testing.TB) *Renderer {
	tb.Helper()
	r, err := shared()
	require.NoError(tb, err)
	return r
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	require.NoError(t, Config{MemoryLimit: 64 << 20}.Validate())
	require.Error(t, Config{MemoryLimit: 1 << 20}.Validate())
	require.Error(t, Config{MemoryLimit: 5 << 30}.Validate())
	_, err := New(Config{}, slog.New(slog.DiscardHandler))
	require.Error(t, err)
}

// TestRenderRaft renders every page of the sample at 200 dpi and logs how
// long the runtime's start and each page took.
func TestRenderRaft(t *testing.T) {
	t.Parallel()
	r, err := New(Config{MemoryLimit: 256 << 20, Cache: cache}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer func() { require.NoError(t, r.Close()) }()
	require.Zero(t, r.Started(), "the runtime starts with the first document, not before")

	data := readRaft(t)
	start := time.Now()
	doc, err := r.Open(context.Background(), data)
	require.NoError(t, err)
	defer doc.Close()
	t.Logf("runtime started in %s; first document open after %s", r.Started().Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	require.Positive(t, r.Started())
	require.Equal(t, 5, doc.Pages())
	for i := range doc.Pages() {
		w, h, err := doc.PageSize(i)
		require.NoError(t, err)
		require.Equal(t, [2]float64{612, 792}, [2]float64{w, h})
		t0 := time.Now()
		img, release, err := doc.Render(i, 1700, 2200)
		require.NoError(t, err)
		took := time.Since(t0)
		require.Equal(t, image.Rect(0, 0, 1700, 2200), img.Bounds())
		// Some ink on every page, white paper around it.
		dark := 0
		rgba := img.(*image.RGBA)
		for p := 0; p < len(rgba.Pix); p += 4 * 97 {
			if rgba.Pix[p] < 128 {
				dark++
			}
		}
		release()
		require.Positive(t, dark, "page %d has ink", i+1)
		t.Logf("page %d: 1700x2200 in %s", i+1, took.Round(time.Millisecond))
	}
	_, _, err = doc.PageSize(5)
	f, ok := event.AsFailure(err)
	require.True(t, ok, "%v", err)
	require.Equal(t, event.CodeDecodeError, f.Code)
}

func TestOpenFailures(t *testing.T) {
	t.Parallel()
	r := sharedRenderer(t)
	data := readRaft(t)
	for name, pdf := range map[string][]byte{
		"truncated": data[:len(data)/4],
		"not a pdf": []byte("%PDF-1.4\nhello\n"),
		"empty":     {},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := r.Open(context.Background(), pdf)
			f, ok := event.AsFailure(err)
			require.True(t, ok, "%v", err)
			require.Equal(t, event.CodeDecodeError, f.Code)
		})
	}
}

// TestMemoryLimit shows that a document cannot take more memory than
// its instance is given: a page bitmap larger than the limit fails as a
// bad document, and the renderer keeps working.
func TestMemoryLimit(t *testing.T) {
	t.Parallel()
	r, err := New(Config{MemoryLimit: 24 << 20, Cache: cache}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer r.Close()
	doc, err := r.Open(context.Background(), readRaft(t))
	require.NoError(t, err)
	_, _, err = doc.Render(0, 3400, 4400) // 60 MB of RGBA
	f, ok := event.AsFailure(err)
	require.True(t, ok, "%v", err)
	require.Equal(t, event.CodeDecodeError, f.Code)
	doc.Close()

	doc, err = r.Open(context.Background(), readRaft(t))
	require.NoError(t, err)
	defer doc.Close()
	img, release, err := doc.Render(0, 850, 1100)
	require.NoError(t, err)
	require.Equal(t, 850, img.Bounds().Dx())
	release()
}

// TestContextEndKillsTheDocument: once the document's context ends, its
// instance is killed and calls fail with the context's cause, not as a
// bad document; the pool hands out a fresh instance afterwards.
func TestContextEndKillsTheDocument(t *testing.T) {
	t.Parallel()
	r := sharedRenderer(t)
	data := readRaft(t)
	cause := errors.New("time is up")
	ctx, cancel := context.WithCancelCause(context.Background())
	doc, err := r.Open(ctx, data)
	require.NoError(t, err)
	cancel(cause)
	require.Eventually(t, func() bool {
		_, _, err = doc.Render(0, 170, 220)
		return err != nil
	}, 10*time.Second, 10*time.Millisecond)
	require.ErrorIs(t, err, cause)
	_, isFailure := event.AsFailure(err)
	require.False(t, isFailure)
	doc.Close() // after a kill: a no-op

	_, err = r.Open(ctx, data)
	require.ErrorIs(t, err, cause)

	doc, err = r.Open(context.Background(), data)
	require.NoError(t, err)
	doc.Close()
}

func TestConcurrentDocuments(t *testing.T) {
	t.Parallel()
	r := sharedRenderer(t)
	data := readRaft(t)
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Go(func() {
			doc, err := r.Open(context.Background(), data)
			if err != nil {
				errs[i] = err
				return
			}
			defer doc.Close()
			img, release, err := doc.Render(i%5, 340, 440)
			if err == nil {
				if img.Bounds().Dx() != 340 {
					err = errors.New("wrong width")
				}
				release()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
}

func TestClosedRenderer(t *testing.T) {
	t.Parallel()
	r, err := New(Config{MemoryLimit: 64 << 20}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.NoError(t, r.Close())
	_, err = r.Open(context.Background(), []byte("%PDF-1.4"))
	require.Error(t, err)
	_, isFailure := event.AsFailure(err)
	require.False(t, isFailure, "a closed renderer is not the document's fault")
}
