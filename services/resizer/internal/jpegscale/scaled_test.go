package jpegscale

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// photoLike is a smooth image with some texture: gradients, circles and a
// little deterministic noise, closer to a photo than a flat test card.
func photoLike(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	seed := uint32(1)
	for y := range h {
		for x := range w {
			seed = seed*1664525 + 1013904223
			n := int(seed>>28) - 8
			dx, dy := float64(x-w/3), float64(y-h/2)
			ring := 60 * math.Sin(math.Sqrt(dx*dx+dy*dy)/9)
			r := 128 + int(ring) + n
			g := x*255/w + n
			b := y*255/h - n
			img.Set(x, y, color.RGBA{uint8(min(max(r, 0), 255)), uint8(min(max(g, 0), 255)), uint8(min(max(b, 0), 255)), 255})
		}
	}
	return img
}

func encode(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func gray(img image.Image) *image.Gray {
	b := img.Bounds()
	g := image.NewGray(b)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			g.Set(x, y, img.At(x, y))
		}
	}
	return g
}

// fixtures are JPEGs of every kind the decoder reads: baseline 4:2:0 and
// grayscale written by Go, and the resizer's progressive and CMYK test
// files; a restart-marker file when testdata has one.
func fixtures(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{
		"baseline 420": encode(t, photoLike(203, 150)),
		"grayscale":    encode(t, gray(photoLike(150, 97))),
	}
	for _, name := range []string{"progressive.jpg", "cmyk.jpg", "restart.jpg", "progressive-photo.jpg", "progressive-restart-gray.jpg"} {
		for _, dir := range []string{"testdata", "../imaging/testdata"} {
			if b, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
				out[name] = b
				break
			}
		}
	}
	return out
}

// boxDown averages s x s blocks of img (converted to RGBA), with partial
// blocks at the right and bottom edges, as the reference for DecodeScaled.
func boxDown(img image.Image, s int) *image.RGBA {
	b := img.Bounds()
	w, h := (b.Dx()+s-1)/s, (b.Dy()+s-1)/s
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			var r, g, bl, n uint32
			for yy := y * s; yy < min(y*s+s, b.Dy()); yy++ {
				for xx := x * s; xx < min(x*s+s, b.Dx()); xx++ {
					c := color.RGBAModel.Convert(img.At(b.Min.X+xx, b.Min.Y+yy)).(color.RGBA)
					r, g, bl, n = r+uint32(c.R), g+uint32(c.G), bl+uint32(c.B), n+1
				}
			}
			out.SetRGBA(x, y, color.RGBA{uint8(r / n), uint8(g / n), uint8(bl / n), 255})
		}
	}
	return out
}

// planes splits a YCbCr image into its three planes as Gray images; other
// images are returned whole.
func planes(img image.Image) []image.Image {
	m, ok := img.(*image.YCbCr)
	if !ok {
		return []image.Image{img}
	}
	last := m.COffset(m.Rect.Max.X-1, m.Rect.Max.Y-1) // the last chroma sample
	cx, ch := last%m.CStride+1, last/m.CStride+1
	return []image.Image{
		&image.Gray{Pix: m.Y, Stride: m.YStride, Rect: image.Rect(0, 0, m.Rect.Dx(), m.Rect.Dy())},
		&image.Gray{Pix: m.Cb, Stride: m.CStride, Rect: image.Rect(0, 0, cx, ch)},
		&image.Gray{Pix: m.Cr, Stride: m.CStride, Rect: image.Rect(0, 0, cx, ch)},
	}
}

// psnr compares two images of the same size on R, G and B.
func psnr(a, b image.Image) float64 {
	ab := a.Bounds()
	bb := b.Bounds()
	var se float64
	var n int
	for y := 0; y < ab.Dy(); y++ {
		for x := 0; x < ab.Dx(); x++ {
			ca := color.RGBAModel.Convert(a.At(ab.Min.X+x, ab.Min.Y+y)).(color.RGBA)
			cb := color.RGBAModel.Convert(b.At(bb.Min.X+x, bb.Min.Y+y)).(color.RGBA)
			for _, d := range []float64{float64(ca.R) - float64(cb.R), float64(ca.G) - float64(cb.G), float64(ca.B) - float64(cb.B)} {
				se += d * d
				n++
			}
		}
	}
	if se == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(255*255/(se/float64(n)))
}

// TestDecodeScaledMatchesBoxDownscale checks every scale of every kind of
// JPEG against the full decode averaged over s x s blocks: the same size,
// the same colour model, and close pixels.
func TestDecodeScaledMatchesBoxDownscale(t *testing.T) {
	t.Parallel()
	for name, data := range fixtures(t) {
		full, err := jpeg.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: image/jpeg: %v", name, err)
		}
		for _, s := range []int{1, 2, 4, 8} {
			got, err := DecodeScaled(bytes.NewReader(data), s)
			if err != nil {
				t.Fatalf("%s 1/%d: %v", name, s, err)
			}
			w, h := ScaledSize(full.Bounds().Dx(), full.Bounds().Dy(), s)
			if got.Bounds() != image.Rect(0, 0, w, h) {
				t.Fatalf("%s 1/%d: bounds %v, want %dx%d", name, s, got.Bounds(), w, h)
			}
			if got.ColorModel() != full.ColorModel() {
				t.Fatalf("%s 1/%d: colour model %T, want %T", name, s, got, full)
			}
			if s == 1 {
				if p := psnr(got, full); !math.IsInf(p, 1) {
					t.Fatalf("%s: full-size decode differs from image/jpeg (PSNR %.1f dB)", name, p)
				}
				continue
			}
			// Box averaging and a truncated DCT are different low-pass
			// filters; on real content they agree well above 30 dB. Planes
			// are compared one by one: subsampled chroma at 1/8 is the mean
			// of a 16x16 block, which cannot match RGB averaged over 8x8.
			gp, fp := planes(got), planes(full)
			for i := range gp {
				if p := psnr(gp[i], boxDown(fp[i], s)); p < 30 {
					t.Errorf("%s 1/%d plane %d: PSNR %.1f dB against the box-downscaled full decode, want >= 30", name, s, i, p)
				} else {
					t.Logf("%s 1/%d plane %d: PSNR %.1f dB", name, s, i, p)
				}
			}
		}
	}
}

func TestDecodeScaledRejectsOtherScales(t *testing.T) {
	t.Parallel()
	data := encode(t, photoLike(16, 16))
	for _, s := range []int{0, 3, 16, -1} {
		if _, err := DecodeScaled(bytes.NewReader(data), s); err == nil {
			t.Errorf("scale %d: no error", s)
		}
	}
}

// FuzzDecodeScaled feeds hostile bytes to every scale: no panic, no hang,
// and an image has the size its header declares, reduced.
func FuzzDecodeScaled(f *testing.F) {
	f.Add(encode(f, photoLike(40, 24)), uint8(3))
	f.Add(encode(f, gray(photoLike(17, 9))), uint8(1))
	for _, p := range []string{"../imaging/testdata/progressive.jpg", "../imaging/testdata/cmyk.jpg", "testdata/restart.jpg", "testdata/bands-progressive.jpg"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b, uint8(2))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, sel uint8) {
		cfg, err := DecodeConfig(bytes.NewReader(data))
		if err != nil || int64(cfg.Width)*int64(cfg.Height) > 1<<20 {
			return
		}
		s := 1 << (sel % 4)
		img, err := DecodeScaled(bytes.NewReader(data), s)
		if err != nil {
			return
		}
		w, h := ScaledSize(cfg.Width, cfg.Height, s)
		if img.Bounds() != image.Rect(0, 0, w, h) {
			t.Fatalf("1/%d of %dx%d gave %v", s, cfg.Width, cfg.Height, img.Bounds())
		}
	})
}
