// Package app holds the downloader's use case: turn a PhotoRequested into a
// stored original and a PhotoDownloaded, or into a PhotoFailed.
package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	_ "image/gif"  // header decoding for DecodeConfig
	_ "image/jpeg" // header decoding for DecodeConfig
	_ "image/png"  // header decoding for DecodeConfig
	"io"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"path"
	"time"

	"github.com/photopipe/photopipe/shared/event"
	"github.com/photopipe/photopipe/shared/imagetype"
	"github.com/photopipe/photopipe/shared/logging"
	"github.com/photopipe/photopipe/shared/storage"
)

// HandlerName names the downloader's handler. Never rename it.
const HandlerName = "downloader.download"

// Fetcher starts a download; its errors are event Failures where the
// source is to blame.
type Fetcher interface {
	Fetch(ctx context.Context, url string) (io.ReadCloser, error)
}

// Publisher publishes events.
type Publisher interface {
	Publish(ctx context.Context, e any) error
}

// Downloader handles PhotoRequested.
type Downloader struct {
	fetch      Fetcher
	store      storage.Store
	events     Publisher
	log        *slog.Logger
	retries    int
	retryDelay time.Duration
	// DeadLetterSourceFailures makes a source that keeps failing (a
	// retryable failure after the retries) a transient error: the bus
	// retries it with backoff and then dead-letters it for replay, instead
	// of the photo failing.
	DeadLetterSourceFailures bool
}

// New returns a Downloader that retries retryable failures retries times,
// waiting retryDelay (doubled each time, with jitter) in between.
func New(f Fetcher, s storage.Store, p Publisher, log *slog.Logger, retries int, retryDelay time.Duration) *Downloader {
	return &Downloader{fetch: f, store: s, events: p, log: log, retries: retries, retryDelay: retryDelay}
}

// headLen is how much of a file is read ahead to detect its format and,
// for most images, its dimensions (JPEG headers with EXIF can be long).
const headLen = 64 << 10

// Handle stores the photo's original and publishes PhotoDownloaded. A bad
// source ends in PhotoFailed and returns nil (the message is done); other
// errors (storage, broker) are returned to be retried.
func (d *Downloader) Handle(ctx context.Context, e *event.PhotoRequested) error {
	ctx = logging.With(ctx, slog.String("photo_id", e.PhotoID), slog.Int("attempt", e.Attempt))
	out, err := d.download(ctx, e)
	if f, ok := event.AsFailure(err); ok && f.Retryable && d.DeadLetterSourceFailures {
		return fmt.Errorf("download photo %s: the source keeps failing: %s", e.PhotoID, f.Message)
	}
	if f, ok := event.AsFailure(err); ok {
		d.log.InfoContext(ctx, "photo failed", slog.String("code", f.Code), slog.String("reason", f.Message))
		return d.events.Publish(ctx, &event.PhotoFailed{
			Header: event.NewHeader(e.PhotoID, e.Attempt), Stage: event.StageDownload,
			Code: f.Code, Message: f.Message, Retryable: f.Retryable,
		})
	}
	if err != nil {
		return fmt.Errorf("download photo %s: %w", e.PhotoID, err)
	}
	d.log.InfoContext(ctx, "original stored", slog.String("key", out.OriginalKey), slog.Int64("bytes", out.Bytes))
	return d.events.Publish(ctx, out)
}

func (d *Downloader) download(ctx context.Context, e *event.PhotoRequested) (*event.PhotoDownloaded, error) {
	if e.OriginalKey != "" {
		return d.inspectStored(ctx, e)
	}
	delay := d.retryDelay
	for try := 0; ; try++ {
		out, err := d.fetchAndStore(ctx, e)
		f, ok := event.AsFailure(err)
		if !ok || !f.Retryable || try >= d.retries {
			return out, err
		}
		d.log.InfoContext(ctx, "download retry", slog.Int("try", try+1), slog.String("reason", f.Message))
		wait := delay/2 + rand.N(delay/2+1)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		delay *= 2
	}
}

func (d *Downloader) fetchAndStore(ctx context.Context, e *event.PhotoRequested) (*event.PhotoDownloaded, error) {
	body, err := d.fetch.Fetch(ctx, e.URL)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	// The head is read once, inspected, and then stored in front of the
	// rest of the body, which goes to storage in the store's own chunks:
	// no second copy of the whole body through a buffer of ours.
	head := make([]byte, headLen)
	hn, err := io.ReadFull(body, head)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, err
	}
	head = head[:hn]
	format, w, h, err := inspect(head)
	if err != nil {
		return nil, err
	}
	filename := e.Filename
	if filename == "" {
		filename = filenameFromURL(e.URL, format)
	}
	key := storage.OriginalKey(e.PhotoID, filename)
	n, err := d.store.Put(ctx, key, io.MultiReader(bytes.NewReader(head), body))
	if err != nil {
		if f, ok := event.AsFailure(err); ok {
			return nil, f // the source broke off or sent too much
		}
		return nil, fmt.Errorf("store original: %w", err)
	}
	if n == 0 {
		return nil, event.Fail(event.CodeUnsupportedFormat, "source sent an empty file")
	}
	return downloaded(e, key, filename, format, n, w, h), nil
}

// inspectStored checks an uploaded original that is already in storage.
func (d *Downloader) inspectStored(ctx context.Context, e *event.PhotoRequested) (*event.PhotoDownloaded, error) {
	obj, err := d.store.Open(ctx, e.OriginalKey)
	if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrInvalidKey) {
		return nil, event.Fail(event.CodeDownloadError, "uploaded original %q is missing", e.OriginalKey)
	}
	if err != nil {
		return nil, fmt.Errorf("open original: %w", err)
	}
	defer obj.Close()
	head := make([]byte, headLen)
	n, err := io.ReadFull(obj, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read original: %w", err)
	}
	if n == 0 {
		return nil, event.Fail(event.CodeUnsupportedFormat, "the file is empty")
	}
	format, w, h, err := inspect(head[:n])
	if err != nil {
		return nil, err
	}
	filename := e.Filename
	if filename == "" {
		filename = path.Base(e.OriginalKey)
	}
	return downloaded(e, e.OriginalKey, filename, format, obj.Info().Size, w, h), nil
}

// inspect detects the format from the first bytes and reads the dimensions
// from the header when it is within them.
func inspect(head []byte) (imagetype.Format, int, int, error) {
	if len(head) == 0 {
		return imagetype.Unknown, 0, 0, event.Fail(event.CodeUnsupportedFormat, "the file is empty")
	}
	format := imagetype.Detect(head)
	if format == imagetype.Unknown {
		return format, 0, 0, event.Fail(event.CodeUnsupportedFormat, "not an image or PDF (starts with %q)", printable(head))
	}
	var w, h int
	if cfg, _, err := image.DecodeConfig(bytes.NewReader(head)); err == nil {
		w, h = cfg.Width, cfg.Height
	}
	// Report the size as shown, like the resizer does: an EXIF orientation
	// of 5-8 swaps the sides.
	if o, err := imagetype.ReadOrientation(bytes.NewReader(head)); err == nil && o.SwapsAxes() {
		w, h = h, w
	}
	return format, w, h, nil
}

func downloaded(e *event.PhotoRequested, key, filename string, f imagetype.Format, n int64, w, h int) *event.PhotoDownloaded {
	return &event.PhotoDownloaded{
		Header:      event.NewHeader(e.PhotoID, e.Attempt),
		OriginalKey: key,
		Filename:    filename,
		ContentType: f.ContentType(),
		Bytes:       n,
		Width:       w,
		Height:      h,
		Renditions:  e.Renditions,
	}
}

// filenameFromURL takes the last path segment of the URL, or names the file
// after its format.
func filenameFromURL(raw string, f imagetype.Format) string {
	if u, err := url.Parse(raw); err == nil {
		if base := storage.SafeFilename(path.Base(u.Path), ""); base != "" {
			return base
		}
	}
	return "original." + f.Extension()
}

func printable(b []byte) string {
	if len(b) > 16 {
		b = b[:16]
	}
	out := make([]rune, 0, len(b))
	for _, c := range b {
		if c >= 0x20 && c < 0x7f {
			out = append(out, rune(c))
		} else {
			out = append(out, '.')
		}
	}
	return string(out)
}
