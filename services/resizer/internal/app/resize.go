// Package app holds the resizer's use case: turn a stored original into its
// renditions and a ThumbnailCreated, or into a PhotoFailed.
package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"log/slog"

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
		})
	}
	if err != nil {
		return fmt.Errorf("render photo %s: %w", e.PhotoID, err)
	}
	r.log.InfoContext(ctx, "renditions stored", slog.Int("renditions", len(out.Renditions)))
	return r.events.Publish(ctx, out)
}

func (r *Resizer) render(ctx context.Context, e *event.PhotoDownloaded) (*event.ThumbnailCreated, error) {
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
	n, _ := obj.Read(head[:])
	if _, err := obj.Seek(0, 0); err != nil {
		return nil, fmt.Errorf("rewind original: %w", err)
	}
	switch imagetype.Detect(head[:n]) {
	case imagetype.JPEG, imagetype.PNG, imagetype.GIF:
	default:
		return nil, event.Fail(event.CodeUnsupportedFormat, "%s originals cannot be rendered", e.ContentType)
	}
	img, err := imaging.Decode(obj, r.limits)
	if err != nil {
		return nil, err
	}
	b := img.Bounds()
	out := &event.ThumbnailCreated{
		Header: event.NewHeader(e.PhotoID, e.Attempt),
		Width:  b.Dx(), Height: b.Dy(), Pages: 1,
	}
	for _, p := range presets {
		rendition, err := r.store1(ctx, e.PhotoID, p, img)
		if err != nil {
			return nil, err
		}
		out.Renditions = append(out.Renditions, rendition)
	}
	return out, nil
}

func (r *Resizer) store1(ctx context.Context, photoID string, p rendition.Preset, img image.Image) (event.Rendition, error) {
	dst := imaging.Render(img, p)
	data, err := imaging.Encode(dst, p)
	if err != nil {
		return event.Rendition{}, err
	}
	key := storage.RenditionKey(photoID, p.Name, 0, p.Extension())
	n, err := r.store.Put(ctx, key, bytes.NewReader(data))
	if err != nil {
		return event.Rendition{}, fmt.Errorf("store rendition: %w", err)
	}
	db := dst.Bounds()
	return event.Rendition{
		Name: p.Name, Key: key, Width: db.Dx(), Height: db.Dy(), Format: p.Format, Bytes: n,
	}, nil
}
