// Package app holds the resizer's use case: turn a stored original into its
// renditions and a ThumbnailCreated, or into a PhotoFailed.
package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"log/slog"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/photopipe/photopipe/services/resizer/internal/imaging"
	"github.com/photopipe/photopipe/shared/event"
	"github.com/photopipe/photopipe/shared/imagetype"
	"github.com/photopipe/photopipe/shared/logging"
	"github.com/photopipe/photopipe/shared/rendition"
	"github.com/photopipe/photopipe/shared/storage"
)

// HandlerName names the resizer's handler. Never rename it.
const HandlerName = "resizer.render"

// Publisher publishes events.
type Publisher interface {
	Publish(ctx context.Context, e any) error
}

// Resizer handles PhotoDownloaded.
type Resizer struct {
	store   storage.Store
	events  Publisher
	log     *slog.Logger
	presets rendition.Presets
	limits  imaging.Limits
	pdf     PDFOptions
	// gpuSleep, when set, adds simulated GPU time to every image.
	gpuSleep func(ctx context.Context, d time.Duration) error
	// timings, when set, receives every image's stage durations.
	timings func(imaging.Timings)
	// slots, when set, bounds how many photos are rendered at once
	// (WithConcurrency).
	slots *semaphore.Weighted
}

// New returns a Resizer rendering presets within limits.
func New(s storage.Store, p Publisher, log *slog.Logger, presets rendition.Presets, limits imaging.Limits) *Resizer {
	return &Resizer{store: s, events: p, log: log, presets: presets, limits: limits}
}

// Handle renders the photo's renditions and publishes ThumbnailCreated. Bad
// input ends in PhotoFailed and returns nil; other errors are returned.
func (r *Resizer) Handle(ctx context.Context, e *event.PhotoDownloaded) error {
	ctx = logging.With(ctx, slog.String("photo_id", e.PhotoID), slog.Int("attempt", e.Attempt))
	out, err := r.render(ctx, e)
	if f, ok := event.AsFailure(err); ok {
		r.log.InfoContext(ctx, "photo failed", slog.String("code", f.Code), slog.String("reason", f.Message))
		return r.events.Publish(ctx, &event.PhotoFailed{
			Header: event.NewHeader(e.PhotoID, e.Attempt), Stage: event.StageResize,
			Code: f.Code, Message: f.Message, Retryable: f.Retryable,
			OriginalKey: e.OriginalKey, Filename: e.Filename, ContentType: e.ContentType, Bytes: e.Bytes,
			Width: e.Width, Height: e.Height,
		})
	}
	if err != nil {
		return fmt.Errorf("render photo %s: %w", e.PhotoID, err)
	}
	// The original's details travel along: the recorder learns them from
	// here (it does not consume PhotoDownloaded).
	out.OriginalKey, out.Filename, out.ContentType, out.Bytes = e.OriginalKey, e.Filename, e.ContentType, e.Bytes
	r.log.InfoContext(ctx, "renditions stored", slog.Int("renditions", len(out.Renditions)))
	return r.events.Publish(ctx, out)
}

func (r *Resizer) render(ctx context.Context, e *event.PhotoDownloaded) (*event.ThumbnailCreated, error) {
	// A store that keeps large originals on disk reads this one back into
	// memory while the photo waits for its slot, so that the slot's CPU
	// decodes instead of waiting for the disk.
	if p, ok := r.store.(storage.Prefetcher); ok && e.Bytes >= storage.UncachedMin {
		p.Prefetch(ctx, e.OriginalKey)
	}
	slot, err := r.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer slot.release()
	if err := r.simulateGPU(ctx); err != nil {
		return nil, err
	}
	// Check also drops duplicates: each rendition is stored and reported once.
	names, err := r.presets.Check(e.Renditions)
	if err != nil {
		return nil, event.Fail(event.CodeUnknownRendition, "%v", err)
	}
	presets := make([]rendition.Preset, 0, len(names))
	for _, n := range names {
		presets = append(presets, r.presets[n])
	}

	obj, err := r.store.Open(ctx, e.OriginalKey)
	if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrInvalidKey) {
		return nil, event.Fail(event.CodeDecodeError, "original %q is missing", e.OriginalKey)
	}
	if err != nil {
		return nil, fmt.Errorf("open original: %w", err)
	}
	defer obj.Close()
	var head [imagetype.SniffLen]byte
	n, err := io.ReadFull(obj, head[:])
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("read original: %w", err)
	}
	if _, err := obj.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("rewind original: %w", err)
	}
	switch f := imagetype.Detect(head[:n]); f {
	case imagetype.JPEG, imagetype.PNG, imagetype.GIF, imagetype.WebP, imagetype.BMP, imagetype.TIFF:
		res, err := r.renderImage(ctx, obj, presets)
		if err != nil {
			return nil, err
		}
		// The renditions are in memory: storing them needs no CPU slot.
		slot.release()
		return r.storeImage(ctx, e, res)
	case imagetype.PDF:
		return r.renderPDF(ctx, e, obj, presets)
	default:
		return nil, event.Fail(event.CodeUnsupportedFormat, "the original is not an image or PDF (starts with %q)", printable(head[:n]))
	}
}

// renderImage decodes an image within the pixel limit, and renders and
// encodes each preset, upright.
func (r *Resizer) renderImage(ctx context.Context, obj io.ReadSeeker, presets []rendition.Preset) (*imaging.Result, error) {
	o, err := imagetype.ReadOrientation(obj)
	if err != nil {
		return nil, err
	}
	res, err := imaging.RenderImage(obj, presets, o, r.limits)
	if err != nil {
		return nil, err
	}
	r.observeTimings(ctx, res)
	return res, nil
}

// storeImage stores the renditions of res and returns the event that
// announces them.
func (r *Resizer) storeImage(ctx context.Context, e *event.PhotoDownloaded, res *imaging.Result) (*event.ThumbnailCreated, error) {
	out := &event.ThumbnailCreated{
		Header: event.NewHeader(e.PhotoID, e.Attempt),
		Width:  res.Width, Height: res.Height, Pages: 1,
	}
	for _, rd := range res.Renditions {
		key := storage.RenditionKey(e.PhotoID, rd.Preset.Name, 0, rd.Preset.Extension())
		n, err := r.store.Put(ctx, key, bytes.NewReader(rd.Data))
		if err != nil {
			return nil, fmt.Errorf("store rendition: %w", err)
		}
		out.Renditions = append(out.Renditions, event.Rendition{
			Name: rd.Preset.Name, Key: key, Width: rd.Width, Height: rd.Height, Format: rd.Preset.Format, Bytes: n,
		})
	}
	return out, nil
}

// store1 encodes the rendered image dst for preset p and stores it as page
// (0 for an image without pages).
func (r *Resizer) store1(ctx context.Context, photoID string, p rendition.Preset, dst image.Image, page int) (event.Rendition, error) {
	data, err := imaging.Encode(dst, p)
	if err != nil {
		return event.Rendition{}, err
	}
	key := storage.RenditionKey(photoID, p.Name, page, p.Extension())
	n, err := r.store.Put(ctx, key, bytes.NewReader(data))
	if err != nil {
		return event.Rendition{}, fmt.Errorf("store rendition: %w", err)
	}
	db := dst.Bounds()
	return event.Rendition{
		Name: p.Name, Page: page, Key: key, Width: db.Dx(), Height: db.Dy(), Format: p.Format, Bytes: n,
	}, nil
}

func printable(b []byte) string {
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
