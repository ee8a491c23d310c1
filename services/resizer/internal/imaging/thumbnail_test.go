package imaging

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"testing"

	"github.com/nfnt/resize"
	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/shared/imagetype"
	"github.com/photopipe/photopipe/shared/rendition"
)

// texture is a photo-like test image: gradients, rings of a few periods
// and a little deterministic noise.
func texture(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	seed := uint32(7)
	for y := range h {
		for x := range w {
			seed = seed*1664525 + 1013904223
			n := int(seed>>28) - 8
			dx, dy := float64(x-w/3), float64(y-h/2)
			ring := 70 * math.Sin(math.Sqrt(dx*dx+dy*dy)/23)
			c := color.RGBA{
				uint8(min(max(128+int(ring)+n, 0), 255)),
				uint8(min(max(x*255/w+n, 0), 255)),
				uint8(min(max(y*255/h-n+int(ring/2), 0), 255)),
				255,
			}
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

func psnrRGB(tb testing.TB, a, b image.Image) float64 {
	tb.Helper()
	require.Equal(tb, a.Bounds().Size(), b.Bounds().Size())
	ab, bb := a.Bounds(), b.Bounds()
	var se float64
	for y := range ab.Dy() {
		for x := range ab.Dx() {
			ca := color.RGBAModel.Convert(a.At(ab.Min.X+x, ab.Min.Y+y)).(color.RGBA)
			cb := color.RGBAModel.Convert(b.At(bb.Min.X+x, bb.Min.Y+y)).(color.RGBA)
			dr, dg, db := float64(ca.R)-float64(cb.R), float64(ca.G)-float64(cb.G), float64(ca.B)-float64(cb.B)
			se += dr*dr + dg*dg + db*db
		}
	}
	if se == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(255*255/(se/float64(3*ab.Dx()*ab.Dy())))
}

// TestRenderImageMatchesFullDecode checks shrink-on-load against the
// reference (the whole image decoded, Lanczos3 straight to the size, then
// turned upright) for every preset kind and EXIF orientation: the same
// size, and at least 30 dB PSNR.
func TestRenderImageMatchesFullDecode(t *testing.T) {
	t.Parallel()
	data := encodeJPEG(t, texture(2600, 1500))
	full, err := jpeg.Decode(bytes.NewReader(data))
	require.NoError(t, err)
	presets := []rendition.Preset{preset(t, "thumb"), preset(t, "small"), preset(t, "square100")}
	for o := imagetype.Upright; o <= imagetype.Rotate270; o++ {
		res, err := RenderImage(bytes.NewReader(data), presets, o, bigLimits)
		require.NoError(t, err)
		require.Greater(t, res.Scale, 1, "orientation %d: a 2600x1500 JPEG is decoded reduced", o)
		if o.SwapsAxes() {
			require.Equal(t, [2]int{1500, 2600}, [2]int{res.Width, res.Height})
		} else {
			require.Equal(t, [2]int{2600, 1500}, [2]int{res.Width, res.Height})
		}
		for i, p := range presets {
			q := p
			if o.SwapsAxes() {
				q.Width, q.Height = q.Height, q.Width
			}
			var ref image.Image
			if p.Mode == rendition.Crop {
				ref = cropCentre(full, 2600, 1500, q.Width, q.Height)
			} else {
				nw, nh := rendition.FitSize(2600, 1500, q.Width, q.Height)
				ref = resize.Resize(uint(nw), uint(nh), full, resize.Lanczos3)
			}
			ref = Apply(ref, o)
			got := res.Renditions[i]
			require.Equal(t, ref.Bounds().Size(), got.Image.Bounds().Size(), "%s, orientation %d", p.Name, o)
			require.Equal(t, [2]int{got.Width, got.Height}, [2]int{ref.Bounds().Dx(), ref.Bounds().Dy()})
			ps := psnrRGB(t, got.Image, ref)
			require.GreaterOrEqual(t, ps, 30.0, "%s, orientation %d: PSNR %.1f dB", p.Name, o, ps)
			cfg, format, err := image.DecodeConfig(bytes.NewReader(got.Data))
			require.NoError(t, err)
			require.Equal(t, p.Format, format)
			require.Equal(t, [2]int{got.Width, got.Height}, [2]int{cfg.Width, cfg.Height})
		}
		require.Positive(t, res.Timings.Decode)
		require.Positive(t, res.Timings.Resize)
		require.Positive(t, res.Timings.Encode)
	}
}

func TestJPEGScale(t *testing.T) {
	t.Parallel()
	thumb, preview, square := preset(t, "thumb"), preset(t, "preview"), preset(t, "square100")
	cases := []struct {
		name  string
		w, h  int
		ps    []rendition.Preset
		o     imagetype.Orientation
		scale int
	}{
		{"18 MP thumb", 5184, 3456, []rendition.Preset{thumb}, imagetype.Upright, 8},
		{"4 MP thumb", 2560, 1600, []rendition.Preset{thumb}, imagetype.Upright, 4},
		{"1 MP thumb", 1280, 800, []rendition.Preset{thumb}, imagetype.Upright, 2},
		{"small photo", 640, 480, []rendition.Preset{thumb}, imagetype.Upright, 1},
		{"preview too", 5184, 3456, []rendition.Preset{thumb, preview}, imagetype.Upright, 1},
		{"crop of a panorama", 8000, 1000, []rendition.Preset{square}, imagetype.Upright, 4},
		{"upright box", 2600, 1000, []rendition.Preset{{Width: 320, Height: 100}}, imagetype.Upright, 4},
		{"rotated: the box turns", 2600, 1000, []rendition.Preset{{Width: 320, Height: 100}}, imagetype.Rotate90, 8},
		{"none", 5184, 3456, nil, imagetype.Upright, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.scale, JPEGScale(tc.w, tc.h, tc.ps, tc.o))
		})
	}
}

func TestBoxShrinkKeepsTypeAndAverages(t *testing.T) {
	t.Parallel()
	ycc := image.NewYCbCr(image.Rect(0, 0, 10, 6), image.YCbCrSubsampleRatio420)
	for i := range ycc.Y {
		ycc.Y[i] = uint8(i % 2 * 100) // columns alternate 0, 100
	}
	for i := range ycc.Cb {
		ycc.Cb[i], ycc.Cr[i] = 90, 160
	}
	got := boxShrink(ycc, 2, 1)
	m, ok := got.(*image.YCbCr)
	require.True(t, ok, "%T", got)
	require.Equal(t, image.Rect(0, 0, 5, 3), m.Bounds())
	require.Equal(t, image.YCbCrSubsampleRatio420, m.SubsampleRatio)
	require.Equal(t, uint8(50), m.Y[0])
	require.Equal(t, uint8(90), m.Cb[0])
	require.Equal(t, uint8(160), m.Cr[m.COffset(4, 2)])

	gray := image.NewGray(image.Rect(0, 0, 7, 7)) // 7 = 3+3+1: partial blocks
	for i := range gray.Pix {
		gray.Pix[i] = 30
	}
	g := boxShrink(gray, 1, 1).(*image.Gray)
	require.Equal(t, image.Rect(0, 0, 3, 3), g.Bounds())
	require.Equal(t, uint8(30), g.Pix[len(g.Pix)-1])

	small := image.NewRGBA(image.Rect(0, 0, 10, 10))
	require.Same(t, small, boxShrink(small, 6, 6).(*image.RGBA), "less than 2x: as it is")
}
