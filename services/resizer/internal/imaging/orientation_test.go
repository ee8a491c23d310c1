package imaging

import (
	"image"
	"image/color"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/shared/imagetype"
	"github.com/photopipe/photopipe/shared/rendition"
)

var (
	qGreen = color.NRGBA{G: 255, A: 255}
	qBlue  = color.NRGBA{B: 255, A: 255}
	qWhite = color.NRGBA{R: 255, G: 255, B: 255, A: 255}
)

// quadrants is a w x h image with the four colours at its top-left,
// top-right, bottom-left and bottom-right quadrants.
func quadrants(w, h int, c [4]color.NRGBA) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			i := 0
			if x >= w/2 {
				i++
			}
			if y >= h/2 {
				i += 2
			}
			img.SetNRGBA(x, y, c[i])
		}
	}
	return img
}

// cornerColours reads the four quadrants' centres.
func cornerColours(img image.Image) [4]color.NRGBA {
	b := img.Bounds()
	at := func(x, y int) color.NRGBA { return color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA) }
	x0, x1, y0, y1 := b.Min.X+b.Dx()/4, b.Min.X+3*b.Dx()/4, b.Min.Y+b.Dy()/4, b.Min.Y+3*b.Dy()/4
	return [4]color.NRGBA{at(x0, y0), at(x1, y0), at(x0, y1), at(x1, y1)}
}

// TestApply checks each orientation against a stored image made by hand:
// the corners of the stored image are worked out from the EXIF
// definitions, and applying the orientation must give the upright
// red-green-blue-white image.
func TestApply(t *testing.T) {
	t.Parallel()
	upright := [4]color.NRGBA{red, qGreen, qBlue, qWhite}
	stored := map[imagetype.Orientation][4]color.NRGBA{
		imagetype.Upright:    {red, qGreen, qBlue, qWhite},
		imagetype.MirrorX:    {qGreen, red, qWhite, qBlue},
		imagetype.Rotate180:  {qWhite, qBlue, qGreen, red},
		imagetype.MirrorY:    {qBlue, qWhite, red, qGreen},
		imagetype.Transpose:  {red, qBlue, qGreen, qWhite},
		imagetype.Rotate90:   {qGreen, qWhite, red, qBlue},
		imagetype.Transverse: {qWhite, qGreen, qBlue, red},
		imagetype.Rotate270:  {qBlue, red, qWhite, qGreen},
	}
	for o, c := range stored {
		t.Run(string(rune('0'+o)), func(t *testing.T) {
			t.Parallel()
			w, h := 60, 40
			if o.SwapsAxes() {
				w, h = h, w
			}
			out := Apply(quadrants(w, h, c), o)
			require.Equal(t, image.Rect(0, 0, 60, 40), out.Bounds())
			require.Equal(t, upright, cornerColours(out))

			// Rendering with the orientation gives the upright image
			// fitted in the box as if it had been turned first.
			th := RenderOriented(quadrants(w*10, h*10, c), preset(t, "thumb"), o)
			require.Equal(t, image.Rect(0, 0, 320, 213), th.Bounds())
			require.Equal(t, upright, cornerColours(th))
			sq := RenderOriented(quadrants(w*10, h*10, c), rendition.Preset{Width: 30, Height: 100, Mode: rendition.Crop}, o)
			require.Equal(t, image.Rect(0, 0, 30, 100), sq.Bounds())
		})
	}
}

func TestApplyKeepsUnknownAndUpright(t *testing.T) {
	t.Parallel()
	img := gradient(5, 3)
	for _, o := range []imagetype.Orientation{0, imagetype.Upright, 9, -1} {
		require.Same(t, image.Image(img), Apply(img, o))
	}
	sub := quadrants(20, 20, [4]color.NRGBA{red, qGreen, qBlue, qWhite}).SubImage(image.Rect(10, 0, 20, 10))
	require.Equal(t, qGreen, color.NRGBAModel.Convert(Apply(sub, imagetype.Rotate180).At(0, 0)), "sub-images keep their origin")
}
