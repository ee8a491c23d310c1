package app_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/services/downloader/internal/app"
	"github.com/photopipe/photopipe/shared/bus"
	"github.com/photopipe/photopipe/shared/event"
	"github.com/photopipe/photopipe/shared/storage"
)

// response is what one Fetch call of fakeFetcher yields: body, or err.
type response struct {
	body io.Reader
	err  error
}

// fakeFetcher answers Fetch calls with its responses in turn, repeating the
// last one, and counts calls and unclosed bodies.
type fakeFetcher struct {
	mu        sync.Mutex
	responses []response
	urls      []string
	open      int
}

var _ app.Fetcher = (*fakeFetcher)(nil)

func (f *fakeFetcher) Fetch(_ context.Context, url string) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.urls = append(f.urls, url)
	if len(f.responses) == 0 {
		return nil, errors.New("fakeFetcher: no response configured")
	}
	r := f.responses[0]
	if len(f.responses) > 1 {
		f.responses = f.responses[1:]
	}
	if r.err != nil {
		return nil, r.err
	}
	f.open++
	return &trackedBody{Reader: r.body, f: f}, nil
}

func (f *fakeFetcher) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.urls)
}

func (f *fakeFetcher) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.urls...)
}

func (f *fakeFetcher) unclosed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.open
}

type trackedBody struct {
	io.Reader
	f    *fakeFetcher
	once sync.Once
}

func (b *trackedBody) Close() error {
	b.once.Do(func() {
		b.f.mu.Lock()
		b.f.open--
		b.f.mu.Unlock()
	})
	return nil
}

// fakePublisher records published events and fails with err when set.
type fakePublisher struct {
	mu     sync.Mutex
	err    error
	events []any
}

var _ app.Publisher = (*fakePublisher)(nil)

func (p *fakePublisher) Publish(_ context.Context, e any) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, e)
	return p.err
}

func (p *fakePublisher) published() []any {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]any(nil), p.events...)
}

// brokenStore is a real store whose Put or Open fail with plain errors.
type brokenStore struct {
	storage.Store
	putErr, openErr error
}

func (s brokenStore) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	if s.putErr != nil {
		return 0, s.putErr
	}
	return s.Store.Put(ctx, key, r)
}

func (s brokenStore) Open(ctx context.Context, key string) (storage.Object, error) {
	if s.openErr != nil {
		return nil, s.openErr
	}
	return s.Store.Open(ctx, key)
}

// readerThenErr yields data, then fails with err, as a transfer that breaks
// off or exceeds its limit does.
type readerThenErr struct {
	data []byte
	err  error
}

func (r *readerThenErr) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// fixture is a Downloader over a real store in a temporary directory.
type fixture struct {
	d     *app.Downloader
	dir   string
	store *storage.Local
	fetch *fakeFetcher
	pub   *fakePublisher
}

const (
	testRetries = 2
	photoID     = "0f7d1c2e-photo"
)

func newFixture(tb testing.TB, responses ...response) *fixture {
	tb.Helper()
	dir := tb.TempDir()
	store, err := storage.NewLocal(dir)
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = store.Close() })
	f := &fixture{dir: dir, store: store, fetch: &fakeFetcher{responses: responses}, pub: &fakePublisher{}}
	f.d = app.New(f.fetch, store, f.pub, slog.New(slog.DiscardHandler), testRetries, time.Millisecond)
	return f
}

func requested(url string) *event.PhotoRequested {
	return &event.PhotoRequested{
		Header:     event.NewHeader(photoID, 3),
		URL:        url,
		Renditions: []string{"thumb", "preview"},
	}
}

// onlyEvent returns the single published event as a T.
func onlyEvent[T any](tb testing.TB, p *fakePublisher) T {
	tb.Helper()
	events := p.published()
	require.Len(tb, events, 1)
	e, ok := events[0].(T)
	require.Truef(tb, ok, "published %T", events[0])
	return e
}

// requireStored asserts that key holds want.
func requireStored(tb testing.TB, s storage.Store, key string, want []byte) {
	tb.Helper()
	obj, err := s.Open(tb.Context(), key)
	require.NoError(tb, err)
	defer obj.Close()
	got, err := io.ReadAll(obj)
	require.NoError(tb, err)
	require.Equal(tb, want, got)
}

// requireNoFiles asserts that dir holds no files, not even temporary ones.
func requireNoFiles(tb testing.TB, dir string) {
	tb.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			tb.Errorf("unexpected file %s", path)
		}
		return nil
	})
	require.NoError(tb, err)
}

func requireHeader(tb testing.TB, got event.Header, req *event.PhotoRequested) {
	tb.Helper()
	require.Equal(tb, req.PhotoID, got.PhotoID)
	require.Equal(tb, req.Attempt, got.Attempt)
	require.Equal(tb, event.SchemaVersion, got.Version)
	require.NotEmpty(tb, got.EventID)
	require.NotEqual(tb, req.EventID, got.EventID, "a new event gets its own id")
	require.False(tb, got.OccurredAt.IsZero())
}

func testImage(w, h int) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for x := range w {
		img.Set(x, x%h, color.RGBA{R: 200, A: 255})
	}
	return img
}

func jpegBytes(tb testing.TB, w, h int) []byte {
	tb.Helper()
	var b bytes.Buffer
	require.NoError(tb, jpeg.Encode(&b, testImage(w, h), nil))
	return b.Bytes()
}

// noisyJPEG returns a JPEG that compresses badly, so it is large.
func noisyJPEG(tb testing.TB, w, h int) []byte {
	tb.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = byte(i * 7919 >> 3)
	}
	var b bytes.Buffer
	require.NoError(tb, jpeg.Encode(&b, img, &jpeg.Options{Quality: 100}))
	return b.Bytes()
}

func pngBytes(tb testing.TB, w, h int) []byte {
	tb.Helper()
	var b bytes.Buffer
	require.NoError(tb, png.Encode(&b, testImage(w, h)))
	return b.Bytes()
}

func gifBytes(tb testing.TB, w, h int) []byte {
	tb.Helper()
	var b bytes.Buffer
	require.NoError(tb, gif.Encode(&b, testImage(w, h), nil))
	return b.Bytes()
}

func TestHandleStoresOriginal(t *testing.T) {
	t.Parallel()
	pdf := []byte("%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n")
	// Larger than the 64 KiB the downloader reads ahead to sniff.
	bigJPEG := noisyJPEG(t, 300, 200)
	require.Greater(t, len(bigJPEG), 64<<10)
	cases := []struct {
		name     string
		url      string
		filename string
		body     []byte
		wantKey  string
		wantType string
		wantW    int
		wantH    int
	}{
		{
			name: "jpeg named from the url", url: "http://img.test/cats/tabby.jpg",
			body: jpegBytes(t, 64, 48), wantKey: "originals/" + photoID + "/tabby.jpg",
			wantType: "image/jpeg", wantW: 64, wantH: 48,
		},
		{
			name: "jpeg over the sniffing window", url: "http://img.test/big.jpg",
			body: bigJPEG, wantKey: "originals/" + photoID + "/big.jpg",
			wantType: "image/jpeg", wantW: 300, wantH: 200,
		},
		{
			name: "png whose url says jpg is still png", url: "http://img.test/fake.jpg",
			body: pngBytes(t, 10, 20), wantKey: "originals/" + photoID + "/fake.jpg",
			wantType: "image/png", wantW: 10, wantH: 20,
		},
		{
			name: "gif", url: "http://img.test/anim.gif",
			body: gifBytes(t, 7, 5), wantKey: "originals/" + photoID + "/anim.gif",
			wantType: "image/gif", wantW: 7, wantH: 5,
		},
		{
			name: "pdf has no dimensions", url: "http://img.test/doc.pdf",
			body: pdf, wantKey: "originals/" + photoID + "/doc.pdf",
			wantType: "application/pdf",
		},
		{
			name: "url without a path gets original.jpg", url: "http://img.test",
			body: jpegBytes(t, 8, 8), wantKey: "originals/" + photoID + "/original.jpg",
			wantType: "image/jpeg", wantW: 8, wantH: 8,
		},
		{
			name: "url ending in a slash takes the last segment", url: "http://img.test/photos/",
			body: jpegBytes(t, 8, 8), wantKey: "originals/" + photoID + "/photos",
			wantType: "image/jpeg", wantW: 8, wantH: 8,
		},
		{
			name: "url of dots gets original.jpg", url: "http://img.test/%2e%2e",
			body: jpegBytes(t, 8, 8), wantKey: "originals/" + photoID + "/original.jpg",
			wantType: "image/jpeg", wantW: 8, wantH: 8,
		},
		{
			name: "nameless png gets original.png", url: "http://img.test/",
			body: pngBytes(t, 3, 4), wantKey: "originals/" + photoID + "/original.png",
			wantType: "image/png", wantW: 3, wantH: 4,
		},
		{
			name: "query is not part of the name", url: "http://img.test/get/photo?id=7&size=large",
			body: jpegBytes(t, 8, 8), wantKey: "originals/" + photoID + "/photo",
			wantType: "image/jpeg", wantW: 8, wantH: 8,
		},
		{
			name: "escaped name is made safe", url: "http://img.test/my%20cat%3F.jpg",
			body: jpegBytes(t, 8, 8), wantKey: "originals/" + photoID + "/my_cat_.jpg",
			wantType: "image/jpeg", wantW: 8, wantH: 8,
		},
		{
			name: "given filename wins over the url", url: "http://img.test/x.jpg", filename: "My Cat.jpg",
			body: jpegBytes(t, 8, 8), wantKey: "originals/" + photoID + "/My_Cat.jpg",
			wantType: "image/jpeg", wantW: 8, wantH: 8,
		},
		{
			// Only the key must be safe; the event carries the given name as is.
			name: "given filename cannot leave the photo's directory", url: "http://img.test/x.jpg",
			filename: "../../etc/passwd", body: jpegBytes(t, 8, 8), wantKey: "originals/" + photoID + "/passwd",
			wantType: "image/jpeg", wantW: 8, wantH: 8,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fx := newFixture(t, response{body: bytes.NewReader(tc.body)})
			req := requested(tc.url)
			req.Filename = tc.filename

			require.NoError(t, fx.d.Handle(t.Context(), req))

			got := onlyEvent[*event.PhotoDownloaded](t, fx.pub)
			requireHeader(t, got.Header, req)
			require.Equal(t, tc.wantKey, got.OriginalKey)
			require.Equal(t, tc.wantType, got.ContentType)
			require.Equal(t, int64(len(tc.body)), got.Bytes)
			require.Equal(t, tc.wantW, got.Width)
			require.Equal(t, tc.wantH, got.Height)
			require.Equal(t, req.Renditions, got.Renditions)
			switch {
			case tc.filename == "":
				require.Equal(t, filepath.Base(tc.wantKey), got.Filename, "named like the stored file")
			case tc.filename == filepath.Base(tc.filename):
				require.Equal(t, tc.filename, got.Filename, "the given name is kept for display")
			}
			requireStored(t, fx.store, tc.wantKey, tc.body)
			require.Equal(t, []string{tc.url}, fx.fetch.seen())
			require.Zero(t, fx.fetch.unclosed(), "every body is closed")
		})
	}
}

func TestHandleBadSource(t *testing.T) {
	t.Parallel()
	jpegHead := jpegBytes(t, 8, 8)[:100]
	// A JPEG start followed by more than the sniffing window, so that the
	// failure arrives while storing rather than while sniffing.
	longJPEG := append(append([]byte(nil), jpegHead...), make([]byte, 100<<10)...)
	cases := []struct {
		name      string
		response  response
		code      string
		retryable bool
		fetches   int
	}{
		{
			name: "text body", response: response{body: bytes.NewReader([]byte("<html>not found</html>"))},
			code: event.CodeUnsupportedFormat, fetches: 1,
		},
		{
			name: "empty body", response: response{body: bytes.NewReader(nil)},
			code: event.CodeUnsupportedFormat, fetches: 1,
		},
		{
			name:     "permanent fetch failure is not retried",
			response: response{err: &event.Failure{Code: event.CodeDownloadHTTPStatus, Message: "404"}},
			code:     event.CodeDownloadHTTPStatus, fetches: 1,
		},
		{
			name:     "invalid url",
			response: response{err: event.Fail(event.CodeInvalidURL, "nope")},
			code:     event.CodeInvalidURL, fetches: 1,
		},
		{
			name:     "too large while sniffing",
			response: response{body: &readerThenErr{data: jpegHead, err: event.Fail(event.CodeTooLarge, "too much")}},
			code:     event.CodeTooLarge, fetches: 1,
		},
		{
			name:     "too large while storing",
			response: response{body: &readerThenErr{data: longJPEG, err: event.Fail(event.CodeTooLarge, "too much")}},
			code:     event.CodeTooLarge, fetches: 1,
		},
		{
			name:     "always retryable gives up after the retries",
			response: response{err: &event.Failure{Code: event.CodeDownloadHTTPStatus, Message: "503", Retryable: true}},
			code:     event.CodeDownloadHTTPStatus, retryable: true, fetches: testRetries + 1,
		},
		{
			name: "transfer that always breaks off while storing",
			response: response{body: &readerThenErr{
				data: longJPEG, err: &event.Failure{Code: event.CodeDownloadTimeout, Message: "slow", Retryable: true},
			}},
			code: event.CodeDownloadTimeout, retryable: true, fetches: testRetries + 1,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Every try of a failing body needs its own reader.
			responses := []response{tc.response}
			if r, ok := tc.response.body.(*readerThenErr); ok {
				responses = nil
				for range tc.fetches {
					responses = append(responses, response{body: &readerThenErr{data: r.data, err: r.err}})
				}
			}
			fx := newFixture(t, responses...)
			req := requested("http://img.test/photo.jpg")

			require.NoError(t, fx.d.Handle(t.Context(), req), "a bad source is done with, not redelivered")

			got := onlyEvent[*event.PhotoFailed](t, fx.pub)
			requireHeader(t, got.Header, req)
			require.Equal(t, event.StageDownload, got.Stage)
			require.Equal(t, tc.code, got.Code)
			require.Equal(t, tc.retryable, got.Retryable)
			require.NotEmpty(t, got.Message)
			require.Equal(t, tc.fetches, fx.fetch.calls())
			require.Zero(t, fx.fetch.unclosed(), "every body is closed")
			requireNoFiles(t, fx.dir)
		})
	}
}

func TestHandleRetriesThenSucceeds(t *testing.T) {
	t.Parallel()
	img := jpegBytes(t, 16, 9)
	timeout := &event.Failure{Code: event.CodeDownloadTimeout, Message: "slow", Retryable: true}
	cases := []struct {
		name      string
		responses []response
	}{
		{
			name: "two failed fetches",
			responses: []response{
				{err: &event.Failure{Code: event.CodeDownloadHTTPStatus, Message: "503", Retryable: true}},
				{err: timeout},
				{body: bytes.NewReader(img)},
			},
		},
		{
			name: "two transfers broken off",
			responses: []response{
				{body: &readerThenErr{data: img[:50], err: timeout}},
				{body: &readerThenErr{data: img[:10], err: timeout}},
				{body: bytes.NewReader(img)},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fx := newFixture(t, tc.responses...)
			req := requested("http://img.test/photo.jpg")

			require.NoError(t, fx.d.Handle(t.Context(), req))

			got := onlyEvent[*event.PhotoDownloaded](t, fx.pub)
			require.Equal(t, 3, fx.fetch.calls())
			require.Equal(t, "image/jpeg", got.ContentType)
			require.Equal(t, 16, got.Width)
			require.Equal(t, 9, got.Height)
			requireStored(t, fx.store, got.OriginalKey, img)
			require.Zero(t, fx.fetch.unclosed())
		})
	}
}

func TestHandleReturnsInfrastructureErrors(t *testing.T) {
	t.Parallel()
	errDisk := errors.New("disk full")
	errBroker := errors.New("broker gone")
	img := jpegBytes(t, 8, 8)
	cases := []struct {
		name    string
		putErr  error
		openErr error
		pubErr  error
		upload  bool
		fetch   response
		want    error
		// published is how many events were attempted.
		published int
	}{
		{name: "store fails", putErr: errDisk, fetch: response{body: bytes.NewReader(img)}, want: errDisk},
		{name: "store fails to open an upload", openErr: errDisk, upload: true, want: errDisk},
		{
			name: "publishing PhotoDownloaded fails", pubErr: errBroker,
			fetch: response{body: bytes.NewReader(img)}, want: errBroker, published: 1,
		},
		{
			name: "publishing PhotoFailed fails", pubErr: errBroker,
			fetch: response{err: event.Fail(event.CodeDownloadHTTPStatus, "404")}, want: errBroker, published: 1,
		},
		{
			name: "the body fails with a plain error", fetch: response{body: &readerThenErr{data: img[:20], err: errDisk}},
			want: errDisk,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fx := newFixture(t, tc.fetch)
			fx.pub.err = tc.pubErr
			store := brokenStore{Store: fx.store, putErr: tc.putErr, openErr: tc.openErr}
			d := app.New(fx.fetch, store, fx.pub, slog.New(slog.DiscardHandler), testRetries, time.Millisecond)
			req := requested("http://img.test/photo.jpg")
			if tc.upload {
				req.URL, req.OriginalKey = "", "originals/"+photoID+"/upload.jpg"
			}

			err := d.Handle(t.Context(), req)

			require.ErrorIs(t, err, tc.want, "the bus must retry the message")
			_, isFailure := event.AsFailure(err)
			require.False(t, isFailure)
			require.Len(t, fx.pub.published(), tc.published)
			if !tc.upload {
				require.Equal(t, 1, fx.fetch.calls(), "infrastructure errors are not retried in-process")
			}
			if tc.pubErr == nil {
				requireNoFiles(t, fx.dir)
			}
		})
	}
}

func TestHandleStopsWhenCancelled(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	store, err := storage.NewLocal(dir)
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	fetcher := &fakeFetcher{responses: []response{{err: &event.Failure{Code: event.CodeDownloadTimeout, Retryable: true}}}}
	pub := &fakePublisher{}
	// A retry delay far longer than the test: only cancellation ends the wait.
	d := app.New(fetcher, store, pub, slog.New(slog.DiscardHandler), testRetries, time.Hour)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()

	err = d.Handle(ctx, requested("http://img.test/photo.jpg"))

	require.ErrorIs(t, err, context.Canceled)
	require.Empty(t, pub.published(), "stopping is not the photo's fault")
	require.Equal(t, 1, fetcher.calls())
}

func TestHandleUpload(t *testing.T) {
	t.Parallel()
	img := jpegBytes(t, 30, 20)
	const key = "originals/" + photoID + "/upload.jpg"
	cases := []struct {
		name      string
		stored    []byte // nil stores nothing
		key       string
		filename  string
		wantCode  string
		wantName  string
		wantBytes int64
	}{
		{name: "stored jpeg", stored: img, key: key, wantName: "upload.jpg"},
		{name: "given filename is kept", stored: img, key: key, filename: "Holiday 2024.JPG", wantName: "Holiday 2024.JPG"},
		{name: "missing key", key: key, wantCode: event.CodeDownloadError},
		{name: "key outside the store", key: "../../etc/passwd", wantCode: event.CodeDownloadError},
		{name: "empty file", stored: []byte{}, key: key, wantCode: event.CodeUnsupportedFormat},
		{name: "text file", stored: []byte("hello, world"), key: key, wantCode: event.CodeUnsupportedFormat},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fx := newFixture(t)
			if tc.stored != nil {
				_, err := fx.store.Put(t.Context(), key, bytes.NewReader(tc.stored))
				require.NoError(t, err)
			}
			req := requested("")
			req.OriginalKey, req.Filename = tc.key, tc.filename

			require.NoError(t, fx.d.Handle(t.Context(), req))

			require.Zero(t, fx.fetch.calls(), "uploads are never fetched")
			if tc.wantCode != "" {
				got := onlyEvent[*event.PhotoFailed](t, fx.pub)
				requireHeader(t, got.Header, req)
				require.Equal(t, tc.wantCode, got.Code)
				require.False(t, got.Retryable)
				return
			}
			got := onlyEvent[*event.PhotoDownloaded](t, fx.pub)
			requireHeader(t, got.Header, req)
			require.Equal(t, key, got.OriginalKey)
			require.Equal(t, tc.wantName, got.Filename)
			require.Equal(t, "image/jpeg", got.ContentType)
			require.Equal(t, int64(len(img)), got.Bytes)
			require.Equal(t, 30, got.Width)
			require.Equal(t, 20, got.Height)
			require.Equal(t, req.Renditions, got.Renditions)
			requireStored(t, fx.store, key, img)
		})
	}
}

// realJPEG is a JPEG whose name claims PNG, from the shared test data.
const realJPEG = "../../../../../shared/data/raft/output.png.actually-jpeg"

func TestHandleDetectsFormatFromBytes(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(realJPEG)
	if errors.Is(err, fs.ErrNotExist) {
		t.Skipf("test data %s is absent", realJPEG)
	}
	require.NoError(t, err)
	for _, upload := range []bool{false, true} {
		name := map[bool]string{false: "fetched", true: "uploaded"}[upload]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fx := newFixture(t, response{body: bytes.NewReader(data)})
			req := requested("http://img.test/raft/output.png")
			if upload {
				req.URL, req.OriginalKey = "", "originals/"+photoID+"/output.png"
				_, err := fx.store.Put(t.Context(), req.OriginalKey, bytes.NewReader(data))
				require.NoError(t, err)
			}

			require.NoError(t, fx.d.Handle(t.Context(), req))

			got := onlyEvent[*event.PhotoDownloaded](t, fx.pub)
			require.Equal(t, "image/jpeg", got.ContentType, "the bytes decide, not the name")
			require.Equal(t, "originals/"+photoID+"/output.png", got.OriginalKey)
			require.Equal(t, int64(len(data)), got.Bytes)
			require.Equal(t, 178, got.Width)
			require.Equal(t, 218, got.Height)
			requireStored(t, fx.store, got.OriginalKey, data)
		})
	}
}

// With DeadLetterSourceFailures, a source that keeps failing is a transient
// error for the bus (retried, then dead-lettered for replay); a bad source
// (404) still fails the photo.
func TestHandleDeadLettersSourceFailuresWhenAsked(t *testing.T) {
	t.Parallel()
	down := &event.Failure{Code: event.CodeDownloadHTTPStatus, Message: "source answered 503", Retryable: true}
	responses := make([]response, testRetries+1)
	for i := range responses {
		responses[i] = response{err: down}
	}
	fx := newFixture(t, responses...)
	fx.d.DeadLetterSourceFailures = true
	err := fx.d.Handle(t.Context(), requested("http://img.test/photo.jpg"))
	require.ErrorContains(t, err, "source keeps failing")
	require.False(t, bus.IsPermanent(err))
	require.Empty(t, fx.pub.events, "no PhotoFailed: the message goes to the dead-letter queue")

	fx = newFixture(t, response{err: event.Fail(event.CodeDownloadHTTPStatus, "source answered 404 Not Found")})
	fx.d.DeadLetterSourceFailures = true
	require.NoError(t, fx.d.Handle(t.Context(), requested("http://img.test/photo.jpg")))
	got := onlyEvent[*event.PhotoFailed](t, fx.pub)
	require.Equal(t, event.CodeDownloadHTTPStatus, got.Code)
}
