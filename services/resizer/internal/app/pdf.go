package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"time"

	"github.com/photopipe/photopipe/services/resizer/internal/imaging"
	"github.com/photopipe/photopipe/services/resizer/internal/pdfium"
	"github.com/photopipe/photopipe/shared/event"
	"github.com/photopipe/photopipe/shared/rendition"
	"github.com/photopipe/photopipe/shared/storage"
)

// PDFOptions say how PDF originals are rendered: every page, in order, at
// DPI (or smaller when no requested rendition needs that much), within
// MaxPages and, per page at DPI, the pixel limit.
type PDFOptions struct {
	Renderer *pdfium.Renderer // nil: PDFs fail with unsupported_format
	DPI      int              // PDF_DPI
	MaxPages int              // PDF_MAX_PAGES
	Timeout  time.Duration    // PDF_TIMEOUT: rendering one document
}

// WithPDF enables PDF originals.
func (r *Resizer) WithPDF(o PDFOptions) *Resizer {
	r.pdf = o
	return r
}

// errPDFTimeout is the cause of a document's context when PDF_TIMEOUT ends it.
var errPDFTimeout = errors.New("pdf rendering timed out")

// pageSize is a page's size in pixels at the configured DPI.
type pageSize struct{ w, h int }

// renderPDF renders each page of a PDF as every preset, keyed by page
// number from 1. The original's width and height are those of its first
// page, in pixels at PDF_DPI.
func (r *Resizer) renderPDF(ctx context.Context, e *event.PhotoDownloaded, obj storage.Object, presets []rendition.Preset) (*event.ThumbnailCreated, error) {
	if r.pdf.Renderer == nil {
		return nil, event.Fail(event.CodeUnsupportedFormat, "PDF rendering is not enabled")
	}
	data, err := io.ReadAll(obj)
	if err != nil {
		return nil, fmt.Errorf("read original: %w", err)
	}
	dctx, cancel := context.WithTimeoutCause(ctx, r.pdf.Timeout, errPDFTimeout)
	defer cancel()
	start := time.Now()
	doc, err := r.pdf.Renderer.Open(dctx, data)
	if err != nil {
		return nil, r.pdfError(ctx, err)
	}
	defer doc.Close()

	n := doc.Pages()
	switch {
	case n < 1:
		return nil, event.Fail(event.CodeDecodeError, "the PDF has no pages")
	case n > r.pdf.MaxPages:
		return nil, event.Fail(event.CodePageLimit, "the PDF has %d pages, the limit is %d", n, r.pdf.MaxPages)
	}
	// Every page is checked before any is rendered, so a refused PDF
	// leaves no files behind.
	sizes := make([]pageSize, n)
	for i := range sizes {
		wpt, hpt, err := doc.PageSize(i)
		if err != nil {
			return nil, r.pdfError(ctx, err)
		}
		if sizes[i], err = r.pagePixels(i+1, wpt, hpt); err != nil {
			return nil, err
		}
	}

	out := &event.ThumbnailCreated{
		Header: event.NewHeader(e.PhotoID, e.Attempt),
		Width:  sizes[0].w, Height: sizes[0].h, Pages: n,
	}
	for i, size := range sizes {
		rendered, err := r.renderPage(ctx, doc, e.PhotoID, i, size, presets)
		if err != nil {
			r.discard(ctx, out.Renditions)
			return nil, err
		}
		out.Renditions = append(out.Renditions, rendered...)
	}
	r.log.DebugContext(ctx, "pdf rendered", slog.Int("pages", n), slog.Duration("duration", time.Since(start)))
	return out, nil
}

// pagePixels converts a page size in points to pixels at PDF_DPI and checks
// it against the pixel limit.
func (r *Resizer) pagePixels(page int, wpt, hpt float64) (pageSize, error) {
	w := math.Round(wpt * float64(r.pdf.DPI) / 72)
	h := math.Round(hpt * float64(r.pdf.DPI) / 72)
	if !(w >= 1 && h >= 1) { // also NaN
		return pageSize{}, event.Fail(event.CodeDecodeError, "page %d has no area (%gx%g points)", page, wpt, hpt)
	}
	if w*h > float64(r.limits.MaxPixels) {
		return pageSize{}, event.Fail(event.CodePixelLimit, "page %d is %.0fx%.0f pixels at %d dpi, over the limit of %d pixels",
			page, w, h, r.pdf.DPI, r.limits.MaxPixels)
	}
	return pageSize{w: int(w), h: int(h)}, nil
}

// renderPage renders page i (from 0) once, at the largest size a preset
// needs, and each preset from that bitmap.
func (r *Resizer) renderPage(ctx context.Context, doc *pdfium.Document, photoID string, i int, size pageSize, presets []rendition.Preset) ([]event.Rendition, error) {
	w, h := renderSize(size, presets)
	img, release, err := doc.Render(i, w, h)
	if err != nil {
		return nil, r.pdfError(ctx, err)
	}
	defer release()
	out := make([]event.Rendition, 0, len(presets))
	for _, p := range presets {
		rd, err := r.store1(ctx, photoID, p, imaging.Render(img, p), i+1)
		if err != nil {
			r.discard(ctx, out)
			return nil, err
		}
		out = append(out, rd)
	}
	return out, nil
}

// renderSize is the size to render a page of size s at so that the largest
// preset is made from it without upscaling, and a preset that fits the page
// exactly needs no resampling: the largest scale any preset needs, at most 1.
func renderSize(s pageSize, presets []rendition.Preset) (int, int) {
	fw, fh := float64(s.w), float64(s.h)
	scale := 0.0
	for _, p := range presets {
		bw, bh := float64(p.Width)/fw, float64(p.Height)/fh
		if p.Mode == rendition.Crop {
			scale = max(scale, bw, bh) // cover the box
		} else {
			scale = max(scale, min(bw, bh)) // fit in the box
		}
	}
	if scale >= 1 {
		return s.w, s.h
	}
	return max(1, int(math.Round(fw*scale))), max(1, int(math.Round(fh*scale)))
}

// pdfError turns an error of the renderer into a Failure when this
// document's time ran out; a Failure of the renderer passes unchanged, and
// anything else (the runtime, shutdown) is returned to be retried.
func (r *Resizer) pdfError(ctx context.Context, err error) error {
	if errors.Is(err, errPDFTimeout) {
		return event.Fail(event.CodeDecodeError, "rendering the PDF took longer than %s", r.pdf.Timeout)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// discard deletes renditions stored before a PDF failed, so that a failed
// photo leaves no partial set behind.
func (r *Resizer) discard(ctx context.Context, stored []event.Rendition) {
	ctx = context.WithoutCancel(ctx)
	for _, rd := range stored {
		if err := r.store.Delete(ctx, rd.Key); err != nil {
			r.log.WarnContext(ctx, "rendition not deleted", slog.String("key", rd.Key), slog.String("error", err.Error()))
		}
	}
}
