package imaging

import (
	"errors"
	"fmt"
	"image"
	"io"
	"time"

	"github.com/photopipe/photopipe/services/resizer/internal/jpegscale"
	"github.com/photopipe/photopipe/shared/event"
	"github.com/photopipe/photopipe/shared/imagetype"
	"github.com/photopipe/photopipe/shared/rendition"
)

// Timings is the time one image spent in each stage of RenderImage.
type Timings struct {
	Decode, Resize, Encode time.Duration
}

// Rendered is one preset's output: the image (small: a rendition) and
// its encoding.
type Rendered struct {
	Preset        rendition.Preset
	Image         image.Image
	Data          []byte
	Width, Height int
}

// Result is what RenderImage made of one image.
type Result struct {
	// Width and Height are the original's, as shown (upright).
	Width, Height int
	// Scale is the JPEG shrink-on-load factor used: 1, 2, 4 or 8.
	Scale      int
	Renditions []Rendered
	Timings    Timings
}

// RenderImage decodes the image in r within lim, and renders and encodes
// each preset, upright for the EXIF orientation o. A JPEG is decoded at
// the smallest size (1/2, 1/4 or 1/8, in the DCT domain) that still
// resolves about twice every preset's output, so a thumbnail of an 18 MP
// photo never holds the full-size image. Its errors are event Failures,
// apart from encoding errors.
func RenderImage(r io.ReadSeeker, presets []rendition.Preset, o imagetype.Orientation, lim Limits) (*Result, error) {
	t0 := time.Now()
	img, w, h, scale, err := decodeFor(r, lim, presets, o)
	if err != nil {
		return nil, err
	}
	res := &Result{Width: w, Height: h, Scale: scale}
	if o.SwapsAxes() { // report the size as shown
		res.Width, res.Height = h, w
	}
	t1 := time.Now()
	res.Timings.Decode = t1.Sub(t0)
	for _, p := range presets {
		dst := renderOrientedFrom(img, w, h, p, o)
		t2 := time.Now()
		data, err := Encode(dst, p)
		if err != nil {
			return nil, err
		}
		t3 := time.Now()
		res.Timings.Resize += t2.Sub(t1)
		res.Timings.Encode += t3.Sub(t2)
		t1 = t3
		db := dst.Bounds()
		res.Renditions = append(res.Renditions, Rendered{Preset: p, Image: dst, Data: data, Width: db.Dx(), Height: db.Dy()})
	}
	return res, nil
}

// renderOrientedFrom is RenderOriented for img showing a w x h original.
func renderOrientedFrom(img image.Image, w, h int, p rendition.Preset, o imagetype.Orientation) image.Image {
	if o.SwapsAxes() {
		p.Width, p.Height = p.Height, p.Width
	}
	return Apply(renderFrom(img, w, h, p), o)
}

// decodeFor decodes r like Decode, a JPEG reduced by the scale that
// JPEGScale picks for presets; it returns the image and the original's
// size (as stored, before orientation).
func decodeFor(r io.ReadSeeker, lim Limits, presets []rendition.Preset, o imagetype.Orientation) (image.Image, int, int, int, error) {
	cfg, format, err := readConfig(r, lim)
	if err != nil {
		return nil, 0, 0, 0, err
	}
	if format != "jpeg" {
		img, _, err := image.Decode(r)
		if err != nil {
			return nil, 0, 0, 0, event.Fail(event.CodeDecodeError, "decode %s: %v", format, err)
		}
		return img, cfg.Width, cfg.Height, 1, nil
	}
	scale := JPEGScale(cfg.Width, cfg.Height, presets, o)
	img, err := jpegscale.DecodeScaled(r, scale)
	if err != nil {
		return nil, 0, 0, 0, event.Fail(event.CodeDecodeError, "decode jpeg: %v", err)
	}
	return img, cfg.Width, cfg.Height, scale, nil
}

// JPEGScale is the largest shrink-on-load factor (8, 4, 2 or 1) at which a
// w x h JPEG still has at least twice the pixels, on each side, of what
// every preset makes of it: the margin Lanczos3 needs after the DCT-domain
// reduction and the box pre-shrink to stay free of aliasing.
func JPEGScale(w, h int, presets []rendition.Preset, o imagetype.Orientation) int {
	for _, s := range []int{8, 4, 2} {
		sw, sh := jpegscale.ScaledSize(w, h, s)
		ok := true
		for _, p := range presets {
			if o.SwapsAxes() {
				p.Width, p.Height = p.Height, p.Width
			}
			nw, nh := needSize(w, h, p)
			if sw < 2*nw || sh < 2*nh {
				ok = false
				break
			}
		}
		if ok && len(presets) > 0 {
			return s
		}
	}
	return 1
}

// readConfig reads the image header, refuses images over the pixel limit
// and rewinds r.
func readConfig(r io.ReadSeeker, lim Limits) (image.Config, string, error) {
	cfg, format, err := image.DecodeConfig(r)
	if errors.Is(err, image.ErrFormat) {
		return cfg, format, event.Fail(event.CodeUnsupportedFormat, "the image format is not supported")
	}
	if err != nil {
		return cfg, format, event.Fail(event.CodeDecodeError, "read %s header: %v", format, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return cfg, format, event.Fail(event.CodeDecodeError, "the image declares %dx%d pixels", cfg.Width, cfg.Height)
	}
	if px := int64(cfg.Width) * int64(cfg.Height); px > lim.MaxPixels {
		return cfg, format, event.Fail(event.CodePixelLimit, "%dx%d is %d pixels, the limit is %d", cfg.Width, cfg.Height, px, lim.MaxPixels)
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return cfg, format, fmt.Errorf("rewind image: %w", err)
	}
	return cfg, format, nil
}
