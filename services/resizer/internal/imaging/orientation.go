package imaging

import (
	"image"

	"github.com/photopipe/photopipe/shared/imagetype"
	"github.com/photopipe/photopipe/shared/rendition"
)

// RenderOriented renders preset p of a stored image whose orientation is
// o, so that the result is upright. It scales first, into the box turned
// like the stored image, and turns the small result: the same pixels as
// turning the whole image first, without a second full-size copy of it.
func RenderOriented(img image.Image, p rendition.Preset, o imagetype.Orientation) image.Image {
	if o.SwapsAxes() {
		p.Width, p.Height = p.Height, p.Width
	}
	return Apply(Render(img, p), o)
}

// Apply returns img turned upright: orientation o undone. Upright (and
// any unknown value) returns img itself.
func Apply(img image.Image, o imagetype.Orientation) image.Image {
	if o <= imagetype.Upright || o > imagetype.Rotate270 {
		return img
	}
	src := toNRGBA(img)
	w, h := src.Rect.Dx(), src.Rect.Dy()
	dw, dh := w, h
	if o.SwapsAxes() {
		dw, dh = h, w
	}
	dst := image.NewNRGBA(image.Rect(0, 0, dw, dh))
	for y := range dh {
		for x := range dw {
			var sx, sy int
			switch o {
			case imagetype.MirrorX:
				sx, sy = w-1-x, y
			case imagetype.Rotate180:
				sx, sy = w-1-x, h-1-y
			case imagetype.MirrorY:
				sx, sy = x, h-1-y
			case imagetype.Transpose:
				sx, sy = y, x
			case imagetype.Rotate90:
				sx, sy = y, h-1-x
			case imagetype.Transverse:
				sx, sy = w-1-y, h-1-x
			case imagetype.Rotate270:
				sx, sy = w-1-y, x
			}
			i := src.PixOffset(src.Rect.Min.X+sx, src.Rect.Min.Y+sy)
			copy(dst.Pix[y*dst.Stride+4*x:y*dst.Stride+4*x+4], src.Pix[i:i+4])
		}
	}
	return dst
}
