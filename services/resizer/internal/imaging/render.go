// Package imaging decodes images within limits, turns them upright (EXIF
// orientation), scales them to renditions and encodes them.
package imaging

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	_ "image/gif" // decoder registration
	"image/jpeg"
	"image/png"
	"io"

	"github.com/nfnt/resize"
	_ "golang.org/x/image/bmp"  // decoder registration
	_ "golang.org/x/image/tiff" // decoder registration
	_ "golang.org/x/image/webp" // decoder registration

	"github.com/photopipe/photopipe/shared/event"
	"github.com/photopipe/photopipe/shared/rendition"
)

// Limits bound the work of decoding one image.
type Limits struct {
	MaxPixels int64 // width*height of the decoded image
}

// Decode reads the image header, refuses images over the pixel limit before
// allocating them, then decodes. JPEG (baseline, progressive, CMYK,
// grayscale), PNG, GIF (the first frame), WebP, BMP and TIFF are read. Its
// errors are event Failures.
func Decode(r io.ReadSeeker, lim Limits) (image.Image, error) {
	_, format, err := readConfig(r, lim)
	if err != nil {
		return nil, err
	}
	img, _, err := image.Decode(r)
	if err != nil {
		return nil, event.Fail(event.CodeDecodeError, "decode %s: %v", format, err)
	}
	return img, nil
}

// Render scales img for preset p.
func Render(img image.Image, p rendition.Preset) image.Image {
	b := img.Bounds()
	return renderFrom(img, b.Dx(), b.Dy(), p)
}

// renderFrom scales img, which shows a w x h original (img may be that
// original reduced on load), for preset p: the output has the size the
// preset gives the original. An integer box pre-shrink brings img to
// about twice that size, and Lanczos3 does the rest.
func renderFrom(img image.Image, w, h int, p rendition.Preset) image.Image {
	if p.Mode == rendition.Crop {
		return cropCentre(img, w, h, p.Width, p.Height)
	}
	nw, nh := rendition.FitSize(w, h, p.Width, p.Height)
	if b := img.Bounds(); nw == b.Dx() && nh == b.Dy() {
		return img
	}
	return resample(boxShrink(img, nw, nh), nw, nh)
}

// needSize is the size preset p scales a w x h original to before any
// crop: what the decoded image must (at least) resolve.
func needSize(w, h int, p rendition.Preset) (int, int) {
	if p.Mode == rendition.Crop {
		return coverSize(w, h, p.Width, p.Height)
	}
	return rendition.FitSize(w, h, p.Width, p.Height)
}

// resample scales img to w x h with Lanczos3. nfnt/resize filters
// premultiplied colour, and the filter's negative lobes can leave a colour
// channel above its alpha; Go's draw and colour conversions then overflow
// and wrap (a white edge on a translucent image turns black), so such
// channels are clamped to alpha.
func resample(img image.Image, w, h int) image.Image {
	out := resize.Resize(uint(w), uint(h), img, resize.Lanczos3)
	if out == img {
		return out
	}
	switch m := out.(type) {
	case *image.RGBA:
		for i := 0; i+3 < len(m.Pix); i += 4 {
			a := m.Pix[i+3]
			m.Pix[i], m.Pix[i+1], m.Pix[i+2] = min(m.Pix[i], a), min(m.Pix[i+1], a), min(m.Pix[i+2], a)
		}
	case *image.RGBA64:
		for i := 0; i+7 < len(m.Pix); i += 8 {
			a := uint16(m.Pix[i+6])<<8 | uint16(m.Pix[i+7])
			for c := i; c < i+6; c += 2 {
				if uint16(m.Pix[c])<<8|uint16(m.Pix[c+1]) > a {
					m.Pix[c], m.Pix[c+1] = m.Pix[i+6], m.Pix[i+7]
				}
			}
		}
	}
	return out
}

// coverSize is the size a w x h image is scaled to (never up) so that it
// covers tw x th; an image smaller than the box keeps its size on that side.
func coverSize(w, h, tw, th int) (int, int) {
	// Scale so that the smaller relative side matches the box.
	sw, sh := w, h
	if w*th >= h*tw { // relatively wider: height decides
		if h > th {
			sh = th
			sw = max((w*th+h/2)/h, tw)
		}
	} else if w > tw {
		sw = tw
		sh = max((h*tw+w/2)/w, th)
	}
	return sw, sh
}

// cropCentre scales img, which shows a w x h original, to cover tw x th
// (without upscaling) and cuts out the centre.
func cropCentre(img image.Image, w, h, tw, th int) image.Image {
	sw, sh := coverSize(w, h, tw, th)
	scaled := img
	if b := img.Bounds(); sw != b.Dx() || sh != b.Dy() {
		scaled = resample(boxShrink(img, sw, sh), sw, sh)
	}
	cw, ch := min(tw, sw), min(th, sh)
	sb := scaled.Bounds()
	x0 := sb.Min.X + (sw-cw)/2
	y0 := sb.Min.Y + (sh-ch)/2
	out := image.NewNRGBA(image.Rect(0, 0, cw, ch))
	draw.Draw(out, out.Bounds(), scaled, image.Pt(x0, y0), draw.Src)
	return out
}

// Encode writes img in the preset's format. PNG output is 8 bits per
// channel: images are converted to NRGBA first, because Go's encoder
// would write YCbCr and 16-bit sources as 16-bit PNGs, larger and slower.
func Encode(img image.Image, p rendition.Preset) ([]byte, error) {
	var buf bytes.Buffer
	switch p.Format {
	case "png":
		enc := png.Encoder{CompressionLevel: png.DefaultCompression}
		if err := enc.Encode(&buf, toNRGBA(img)); err != nil {
			return nil, fmt.Errorf("encode png: %w", err)
		}
	default:
		if err := jpeg.Encode(&buf, flatten(img), &jpeg.Options{Quality: p.Quality}); err != nil {
			return nil, fmt.Errorf("encode jpeg: %w", err)
		}
	}
	return buf.Bytes(), nil
}

func toNRGBA(img image.Image) *image.NRGBA {
	if n, ok := img.(*image.NRGBA); ok {
		return n
	}
	b := img.Bounds()
	out := image.NewNRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(out, out.Bounds(), img, b.Min, draw.Src)
	return out
}

// flatten puts an image with transparency on white, as JPEG has no alpha.
func flatten(img image.Image) image.Image {
	switch img.(type) {
	case *image.YCbCr, *image.Gray, *image.CMYK:
		return img
	}
	b := img.Bounds()
	out := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(out, out.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	draw.Draw(out, out.Bounds(), img, b.Min, draw.Over)
	return out
}
