package app

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/services/resizer/internal/imaging"
	"github.com/photopipe/photopipe/shared/event"
	"github.com/photopipe/photopipe/shared/rendition"
	"github.com/photopipe/photopipe/shared/storage"
)

// raftDir holds sample originals, relative to this file's directory.
const raftDir = "../../../../../shared/data/raft/"

var testLimits = imaging.Limits{MaxPixels: 50_000_000}

// fakePublisher records what is published and fails with err when set.
type fakePublisher struct {
	mu     sync.Mutex
	events []any
	err    error
}

func (p *fakePublisher) Publish(_ context.Context, e any) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	p.events = append(p.events, e)
	return nil
}

func (p *fakePublisher) only(tb testing.TB) any {
	tb.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	require.Len(tb, p.events, 1)
	return p.events[0]
}

// failingStore is a Store whose Put or Open fail with the given errors.
type failingStore struct {
	storage.Store
	putErr, openErr error
}

func (s failingStore) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	if s.putErr != nil {
		return 0, s.putErr
	}
	return s.Store.Put(ctx, key, r)
}

func (s failingStore) Open(ctx context.Context, key string) (storage.Object, error) {
	if s.openErr != nil {
		return nil, s.openErr
	}
	return s.Store.Open(ctx, key)
}

var _ storage.Store = failingStore{}

type fixture struct {
	dir   string // the store's directory
	store *storage.Local
	pub   *fakePublisher
	r     *Resizer
}

func newFixture(tb testing.TB, limits imaging.Limits) *fixture {
	tb.Helper()
	dir := tb.TempDir()
	store, err := storage.NewLocal(dir)
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = store.Close() })
	pub := &fakePublisher{}
	log := slog.New(slog.DiscardHandler)
	r := New(store, pub, log, rendition.DefaultPresets(), limits).WithPDF(testPDFOptions(tb))
	return &fixture{dir: dir, store: store, pub: pub, r: r}
}

// put stores data as the original of photoID and returns the event that
// announces it.
func (f *fixture) put(tb testing.TB, photoID string, data []byte, renditions ...string) *event.PhotoDownloaded {
	tb.Helper()
	key := storage.OriginalKey(photoID, "original")
	_, err := f.store.Put(context.Background(), key, bytes.NewReader(data))
	require.NoError(tb, err)
	return &event.PhotoDownloaded{
		Header:      event.NewHeader(photoID, 2),
		OriginalKey: key, Filename: "original", ContentType: "image/jpeg",
		Bytes: int64(len(data)), Width: 3, Height: 2, Renditions: renditions, // header sizes: passed on, not used
	}
}

func (f *fixture) failed(tb testing.TB, e *event.PhotoDownloaded, code string) {
	tb.Helper()
	pf, ok := f.pub.only(tb).(*event.PhotoFailed)
	require.True(tb, ok, "want PhotoFailed, got %#v", f.pub.only(tb))
	require.Equal(tb, code, pf.Code, pf.Message)
	require.Equal(tb, event.StageResize, pf.Stage)
	require.Equal(tb, e.PhotoID, pf.PhotoID)
	require.Equal(tb, e.Attempt, pf.Attempt)
	require.False(tb, pf.Retryable)
	require.NotEmpty(tb, pf.Message)
	require.NotEqual(tb, e.EventID, pf.EventID)
	// The recorder learns the stored original from the failure.
	require.Equal(tb, [...]any{e.OriginalKey, e.Filename, e.ContentType, e.Bytes, e.Width, e.Height},
		[...]any{pf.OriginalKey, pf.Filename, pf.ContentType, pf.Bytes, pf.Width, pf.Height})
	_, err := os.Stat(filepath.Join(f.dir, "thumbnails", e.PhotoID))
	require.ErrorIs(tb, err, os.ErrNotExist, "nothing is stored for a failed photo")
}

func (f *fixture) created(tb testing.TB, e *event.PhotoDownloaded) *event.ThumbnailCreated {
	tb.Helper()
	tc, ok := f.pub.only(tb).(*event.ThumbnailCreated)
	require.True(tb, ok, "want ThumbnailCreated, got %#v", f.pub.only(tb))
	require.Equal(tb, e.PhotoID, tc.PhotoID)
	require.Equal(tb, e.Attempt, tc.Attempt)
	require.Equal(tb, 1, tc.Pages)
	// The recorder learns the stored original from here.
	require.Equal(tb, [...]any{e.OriginalKey, e.Filename, e.ContentType, e.Bytes},
		[...]any{tc.OriginalKey, tc.Filename, tc.ContentType, tc.Bytes})
	return tc
}

// stored opens key and decodes it.
func (f *fixture) stored(tb testing.TB, key string) (image.Config, string, int64) {
	tb.Helper()
	obj, err := f.store.Open(context.Background(), key)
	require.NoError(tb, err)
	defer obj.Close()
	cfg, format, err := image.DecodeConfig(obj)
	require.NoError(tb, err)
	return cfg, format, obj.Info().Size
}

func gradient(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		row := img.Pix[y*img.Stride:]
		for x := range w {
			copy(row[4*x:], []byte{uint8(x * 255 / w), uint8(y * 255 / h), 128, 255})
		}
	}
	return img
}

func jpegOf(tb testing.TB, w, h int) []byte {
	tb.Helper()
	var buf bytes.Buffer
	require.NoError(tb, jpeg.Encode(&buf, gradient(w, h), nil))
	return buf.Bytes()
}

func pngOf(tb testing.TB, w, h int) []byte {
	tb.Helper()
	// A smooth gradient with varying alpha: realistic, and quick to deflate.
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		row := img.Pix[y*img.Stride:]
		for x := range w {
			copy(row[4*x:], []byte{uint8(x * 255 / w), 64, uint8(y * 255 / h), uint8(128 + x*127/w)})
		}
	}
	var buf bytes.Buffer
	require.NoError(tb, png.Encode(&buf, img))
	return buf.Bytes()
}

func gifOf(tb testing.TB, w, h int) []byte {
	tb.Helper()
	pal := color.Palette{color.Black, color.White, color.Transparent}
	frames := []*image.Paletted{image.NewPaletted(image.Rect(0, 0, w, h), pal), image.NewPaletted(image.Rect(0, 0, w, h), pal)}
	for i := range frames[0].Pix {
		frames[0].Pix[i] = uint8(i % 3)
	}
	var buf bytes.Buffer
	require.NoError(tb, gif.EncodeAll(&buf, &gif.GIF{Image: frames, Delay: []int{5, 5}}))
	return buf.Bytes()
}

// hugePNGHeader is a PNG of under 100 bytes whose IHDR declares
// 100000x100000 RGBA pixels.
func hugePNGHeader() []byte {
	var buf bytes.Buffer
	buf.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		_ = binary.Write(&buf, binary.BigEndian, uint32(len(data)))
		buf.WriteString(typ)
		buf.Write(data)
		_ = binary.Write(&buf, binary.BigEndian, crc32.ChecksumIEEE(append([]byte(typ), data...)))
	}
	ihdr := binary.BigEndian.AppendUint32(nil, 100_000)
	ihdr = binary.BigEndian.AppendUint32(ihdr, 100_000)
	chunk("IHDR", append(ihdr, 8, 6, 0, 0, 0))
	chunk("IDAT", []byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01}) // empty zlib stream
	chunk("IEND", nil)
	return buf.Bytes()
}

func raft(tb testing.TB, name string) []byte {
	tb.Helper()
	data, err := os.ReadFile(raftDir + name)
	if errors.Is(err, os.ErrNotExist) {
		tb.Skipf("sample %s is absent", raftDir+name)
	}
	require.NoError(tb, err)
	return data
}

func TestHandleThumb(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		data func(tb testing.TB) []byte
		w, h int // of the original
	}{
		{"raft jpeg", func(tb testing.TB) []byte { return raft(tb, "1.jpg") }, 178, 218},
		{"raft jpeg named png", func(tb testing.TB) []byte { return raft(tb, "output.png.actually-jpeg") }, 178, 218},
		{"landscape jpeg", func(tb testing.TB) []byte { return jpegOf(tb, 641, 480) }, 641, 480},
		{"portrait jpeg", func(tb testing.TB) []byte { return jpegOf(tb, 333, 1000) }, 333, 1000},
		{"png with alpha", func(tb testing.TB) []byte { return pngOf(tb, 700, 420) }, 700, 420},
		{"small png", func(tb testing.TB) []byte { return pngOf(tb, 40, 30) }, 40, 30},
		{"animated gif", func(tb testing.TB) []byte { return gifOf(tb, 300, 480) }, 300, 480},
		{"exact box jpeg", func(tb testing.TB) []byte { return jpegOf(tb, 320, 320) }, 320, 320},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, testLimits)
			e := f.put(t, "photo-1", tc.data(t), "thumb")
			require.NoError(t, f.r.Handle(context.Background(), e))

			out := f.created(t, e)
			require.Equal(t, tc.w, out.Width)
			require.Equal(t, tc.h, out.Height)
			require.Len(t, out.Renditions, 1)
			rd := out.Renditions[0]
			require.Equal(t, "thumb", rd.Name)
			require.Equal(t, "thumbnails/photo-1/thumb.jpg", rd.Key)
			require.Equal(t, "jpeg", rd.Format)
			require.Equal(t, 0, rd.Page)
			require.Equal(t, min(320, max(tc.w, tc.h)), max(rd.Width, rd.Height))
			requireAspect(t, tc.w, tc.h, rd.Width, rd.Height)

			cfg, format, size := f.stored(t, rd.Key)
			require.Equal(t, "jpeg", format)
			require.Equal(t, rd.Width, cfg.Width)
			require.Equal(t, rd.Height, cfg.Height)
			require.Equal(t, size, rd.Bytes)
		})
	}
}

// requireAspect checks that w x h keeps the aspect of origW x origH: the
// side derived from the other is within one pixel of exact.
func requireAspect(tb testing.TB, origW, origH, w, h int) {
	tb.Helper()
	dh := math.Abs(float64(h) - float64(w)*float64(origH)/float64(origW))
	dw := math.Abs(float64(w) - float64(h)*float64(origW)/float64(origH))
	require.True(tb, dh <= 1 || dw <= 1, "%dx%d does not keep the aspect of %dx%d", w, h, origW, origH)
}

func TestHandleDefaultsToThumb(t *testing.T) {
	t.Parallel()
	f := newFixture(t, testLimits)
	e := f.put(t, "p", jpegOf(t, 640, 320))
	require.NoError(t, f.r.Handle(context.Background(), e))
	out := f.created(t, e)
	require.Len(t, out.Renditions, 1)
	require.Equal(t, rendition.Default, out.Renditions[0].Name)
	require.Equal(t, [2]int{320, 160}, [2]int{out.Renditions[0].Width, out.Renditions[0].Height})
}

func TestHandleSeveralRenditions(t *testing.T) {
	t.Parallel()
	want := []struct {
		name, key, format string
		w, h              int
	}{
		{"thumb", "thumbnails/p/thumb.jpg", "jpeg", 320, 192},
		{"preview", "thumbnails/p/preview.png", "png", 840, 504},
		{"resized", "thumbnails/p/resized.jpg", "jpeg", 800, 480},
		{"small", "thumbnails/p/small.jpg", "jpeg", 128, 77},
		{"square100", "thumbnails/p/square100.jpg", "jpeg", 100, 100},
	}
	f := newFixture(t, testLimits)
	names := make([]string, 0, len(want))
	for _, w := range want {
		names = append(names, w.name)
	}
	e := f.put(t, "p", pngOf(t, 840, 504), names...)
	require.NoError(t, f.r.Handle(context.Background(), e))

	out := f.created(t, e)
	require.Len(t, out.Renditions, len(want))
	for i, w := range want {
		rd := out.Renditions[i]
		require.Equal(t, w.name, rd.Name)
		require.Equal(t, w.key, rd.Key)
		require.Equal(t, w.format, rd.Format)
		require.Equal(t, [2]int{w.w, w.h}, [2]int{rd.Width, rd.Height}, w.name)
		cfg, format, size := f.stored(t, rd.Key)
		require.Equal(t, w.format, format)
		require.Equal(t, [2]int{w.w, w.h}, [2]int{cfg.Width, cfg.Height}, w.name)
		require.Equal(t, size, rd.Bytes)
	}
}

func TestHandleDuplicateRenditionsOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t, testLimits)
	e := f.put(t, "p", jpegOf(t, 100, 100), "small", "thumb", "small")
	require.NoError(t, f.r.Handle(context.Background(), e))
	out := f.created(t, e)
	require.Len(t, out.Renditions, 2)
	require.Equal(t, "small", out.Renditions[0].Name)
	require.Equal(t, "thumb", out.Renditions[1].Name)
}

func TestHandleIsIdempotent(t *testing.T) {
	t.Parallel()
	f := newFixture(t, testLimits)
	e := f.put(t, "p", jpegOf(t, 400, 300), "thumb")
	require.NoError(t, f.r.Handle(context.Background(), e))
	require.NoError(t, f.r.Handle(context.Background(), e))
	require.Len(t, f.pub.events, 2)
	first, second := f.pub.events[0].(*event.ThumbnailCreated), f.pub.events[1].(*event.ThumbnailCreated)
	require.Equal(t, first.Renditions, second.Renditions)
}

func TestHandleFailures(t *testing.T) {
	t.Parallel()
	jpg := jpegOf(t, 200, 100)
	cases := []struct {
		name       string
		data       func(tb testing.TB) []byte // nil: nothing is stored
		renditions []string
		limits     imaging.Limits
		code       string
	}{
		{
			name: "unknown rendition", renditions: []string{"thumb", "poster"},
			data: func(testing.TB) []byte { return jpg }, code: event.CodeUnknownRendition,
		},
		{
			name: "text file", data: func(testing.TB) []byte { return []byte("just some text, not a photo\n") },
			code: event.CodeUnsupportedFormat,
		},
		{
			name: "empty file", data: func(testing.TB) []byte { return nil }, code: event.CodeUnsupportedFormat,
		},
		{
			name: "pdf without a catalog", data: func(testing.TB) []byte { return []byte("%PDF-1.7\n1 0 obj\n<<>>\nendobj\n%%EOF\n") },
			code: event.CodeDecodeError,
		},
		{
			name: "truncated webp",
			data: func(testing.TB) []byte { return []byte("RIFF\x00\x00\x00\x00WEBPVP8 \x00\x00\x00\x00") },
			code: event.CodeDecodeError,
		},
		{name: "missing original", code: event.CodeDecodeError},
		{
			name: "truncated jpeg", data: func(testing.TB) []byte { return jpg[:len(jpg)/2] },
			code: event.CodeDecodeError,
		},
		{
			name: "over the pixel limit", data: func(testing.TB) []byte { return jpg },
			limits: imaging.Limits{MaxPixels: 200*100 - 1}, code: event.CodePixelLimit,
		},
		{
			name: "png declaring 100000x100000", data: func(testing.TB) []byte { return hugePNGHeader() },
			code: event.CodePixelLimit,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			limits := tc.limits
			if limits == (imaging.Limits{}) {
				limits = testLimits
			}
			f := newFixture(t, limits)
			e := &event.PhotoDownloaded{
				Header:      event.NewHeader("p", 3),
				OriginalKey: "originals/p/original", ContentType: "application/octet-stream",
				Renditions: tc.renditions,
			}
			if tc.data != nil {
				e = f.put(t, "p", tc.data(t), tc.renditions...)
			}
			require.NoError(t, f.r.Handle(context.Background(), e))
			f.failed(t, e, tc.code)
		})
	}
}

func TestHandleInvalidOriginalKey(t *testing.T) {
	t.Parallel()
	f := newFixture(t, testLimits)
	e := &event.PhotoDownloaded{Header: event.NewHeader("p", 1), OriginalKey: "../outside.jpg"}
	require.NoError(t, f.r.Handle(context.Background(), e))
	f.failed(t, e, event.CodeDecodeError)
}

func TestHandleReturnsInfrastructureErrors(t *testing.T) {
	t.Parallel()
	errBroker := errors.New("broker down")
	errDisk := errors.New("disk full")
	cases := []struct {
		name       string
		data       []byte
		renditions []string
		pubErr     error
		putErr     error
		openErr    error
		want       error
	}{
		{name: "publish ThumbnailCreated", data: jpegOf(t, 50, 50), pubErr: errBroker, want: errBroker},
		{name: "publish PhotoFailed", data: []byte("text"), pubErr: errBroker, want: errBroker},
		{name: "publish PhotoFailed for unknown rendition", data: jpegOf(t, 50, 50), renditions: []string{"nope"}, pubErr: errBroker, want: errBroker},
		{name: "store rendition", data: jpegOf(t, 50, 50), putErr: errDisk, want: errDisk},
		{name: "open original", data: jpegOf(t, 50, 50), openErr: errDisk, want: errDisk},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, testLimits)
			e := f.put(t, "p", tc.data, tc.renditions...)
			f.pub.err = tc.pubErr
			r := New(failingStore{Store: f.store, putErr: tc.putErr, openErr: tc.openErr}, f.pub, slog.New(slog.DiscardHandler), rendition.DefaultPresets(), testLimits)
			err := r.Handle(context.Background(), e)
			require.ErrorIs(t, err, tc.want)
			_, isFailure := event.AsFailure(err)
			require.False(t, isFailure, "infrastructure errors are not photo failures")
			require.Empty(t, f.pub.events)
		})
	}
}

func TestHandleCancelledContext(t *testing.T) {
	t.Parallel()
	f := newFixture(t, testLimits)
	e := f.put(t, "p", jpegOf(t, 50, 50))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := f.r.Handle(ctx, e)
	require.ErrorIs(t, err, context.Canceled)
	require.Empty(t, f.pub.events)
}

func TestHandleCustomPreset(t *testing.T) {
	t.Parallel()
	f := newFixture(t, testLimits)
	presets := rendition.DefaultPresets()
	presets["banner"] = rendition.Preset{Name: "banner", Width: 300, Height: 50, Mode: rendition.Crop, Format: "png"}
	r := New(f.store, f.pub, slog.New(slog.DiscardHandler), presets, testLimits)
	e := f.put(t, "p", jpegOf(t, 400, 400), "banner")
	require.NoError(t, r.Handle(context.Background(), e))
	out := f.created(t, e)
	rd := out.Renditions[0]
	require.Equal(t, "thumbnails/p/banner.png", rd.Key)
	cfg, format, _ := f.stored(t, rd.Key)
	require.Equal(t, "png", format)
	require.Equal(t, [2]int{300, 50}, [2]int{cfg.Width, cfg.Height})
}
