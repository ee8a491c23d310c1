package imaging

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/color/palette"
	"image/draw"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/shared/event"
	"github.com/photopipe/photopipe/shared/rendition"
)

var (
	red   = color.NRGBA{R: 255, A: 255}
	green = color.NRGBA{G: 255, A: 255}
	blue  = color.NRGBA{B: 255, A: 255}
)

var bigLimits = Limits{MaxPixels: 100_000_000}

func preset(tb testing.TB, name string) rendition.Preset {
	tb.Helper()
	p, ok := rendition.DefaultPresets()[name]
	require.True(tb, ok, name)
	return p
}

func filled(w, h int, c color.Color) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.NewUniform(c), image.Point{}, draw.Src)
	return img
}

// gradient is an opaque RGBA image that is not uniform, so that encoders
// cannot take shortcuts.
func gradient(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		row := img.Pix[y*img.Stride:]
		for x := range w {
			copy(row[4*x:], []byte{uint8(x * 255 / w), uint8(y * 255 / h), 128, 255})
		}
	}
	return img
}

func encodeJPEG(tb testing.TB, img image.Image) []byte {
	tb.Helper()
	var buf bytes.Buffer
	require.NoError(tb, jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}))
	return buf.Bytes()
}

func encodePNG(tb testing.TB, img image.Image) []byte {
	tb.Helper()
	var buf bytes.Buffer
	require.NoError(tb, png.Encode(&buf, img))
	return buf.Bytes()
}

// twoFrameGIF is a w x h GIF whose first frame is red and second blue.
func twoFrameGIF(tb testing.TB, w, h int) []byte {
	tb.Helper()
	pal := color.Palette{red, blue}
	frame := func(i uint8) *image.Paletted {
		m := image.NewPaletted(image.Rect(0, 0, w, h), pal)
		for j := range m.Pix {
			m.Pix[j] = i
		}
		return m
	}
	var buf bytes.Buffer
	require.NoError(tb, gif.EncodeAll(&buf, &gif.GIF{
		Image: []*image.Paletted{frame(0), frame(1)},
		Delay: []int{10, 10},
	}))
	return buf.Bytes()
}

// pngHeaderOnly is a PNG of a few dozen bytes whose IHDR declares w x h
// 8-bit RGBA pixels, followed by one tiny IDAT and IEND.
func pngHeaderOnly(tb testing.TB, w, h uint32) []byte {
	tb.Helper()
	var buf bytes.Buffer
	buf.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(data)))
		buf.Write(n[:])
		crc := crc32.NewIEEE()
		crc.Write([]byte(typ))
		crc.Write(data)
		buf.WriteString(typ)
		buf.Write(data)
		binary.BigEndian.PutUint32(n[:], crc.Sum32())
		buf.Write(n[:])
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 6 // bit depth, colour type RGBA
	chunk("IHDR", ihdr)
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	_, err := zw.Write(make([]byte, 5))
	require.NoError(tb, err)
	require.NoError(tb, zw.Close())
	chunk("IDAT", z.Bytes())
	chunk("IEND", nil)
	return buf.Bytes()
}

func requireFailure(tb testing.TB, err error, code string) {
	tb.Helper()
	f, ok := event.AsFailure(err)
	require.True(tb, ok, "want a Failure %s, got %v", code, err)
	require.Equal(tb, code, f.Code, f.Message)
	require.False(tb, f.Retryable)
}

func TestDecode(t *testing.T) {
	t.Parallel()
	withAlpha := filled(30, 20, color.NRGBA{R: 10, G: 20, B: 30, A: 100})
	withAlpha.SetNRGBA(0, 0, color.NRGBA{})
	deep := image.NewNRGBA64(image.Rect(0, 0, 33, 17))
	for y := range 17 {
		for x := range 33 {
			deep.SetNRGBA64(x, y, color.NRGBA64{R: 0xffff, G: 0x8000, A: 0x8000})
		}
	}
	paletted := image.NewPaletted(image.Rect(0, 0, 16, 9), palette.Plan9)
	paletted.SetColorIndex(3, 4, 200)
	gray := image.NewGray(image.Rect(0, 0, 40, 24))
	for i := range gray.Pix {
		gray.Pix[i] = uint8(i)
	}

	cases := []struct {
		name  string
		data  []byte
		w, h  int
		check func(t *testing.T, img image.Image)
	}{
		{
			name: "jpeg", data: encodeJPEG(t, gradient(64, 48)), w: 64, h: 48,
			check: func(t *testing.T, img image.Image) { require.IsType(t, &image.YCbCr{}, img) },
		},
		{
			name: "grayscale jpeg", data: encodeJPEG(t, gray), w: 40, h: 24,
			check: func(t *testing.T, img image.Image) { require.IsType(t, &image.Gray{}, img) },
		},
		{
			name: "paletted png", data: encodePNG(t, paletted), w: 16, h: 9,
			check: func(t *testing.T, img image.Image) {
				p, ok := img.(*image.Paletted)
				require.True(t, ok, "%T", img)
				require.Equal(t, uint8(200), p.ColorIndexAt(3, 4))
			},
		},
		{
			name: "nrgba png with alpha", data: encodePNG(t, withAlpha), w: 30, h: 20,
			check: func(t *testing.T, img image.Image) {
				n, ok := img.(*image.NRGBA)
				require.True(t, ok, "%T", img)
				require.Equal(t, color.NRGBA{R: 10, G: 20, B: 30, A: 100}, n.NRGBAAt(5, 5))
				require.Equal(t, uint8(0), n.NRGBAAt(0, 0).A)
			},
		},
		{
			name: "16-bit png", data: encodePNG(t, deep), w: 33, h: 17,
			check: func(t *testing.T, img image.Image) {
				n, ok := img.(*image.NRGBA64)
				require.True(t, ok, "%T", img)
				require.Equal(t, color.NRGBA64{R: 0xffff, G: 0x8000, A: 0x8000}, n.NRGBA64At(1, 1))
			},
		},
		{
			name: "multi-frame gif gives the first frame", data: twoFrameGIF(t, 21, 13), w: 21, h: 13,
			check: func(t *testing.T, img image.Image) {
				require.Equal(t, color.RGBAModel.Convert(red), color.RGBAModel.Convert(img.At(10, 6)))
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			img, err := Decode(bytes.NewReader(tc.data), bigLimits)
			require.NoError(t, err)
			require.Equal(t, image.Rect(0, 0, tc.w, tc.h), img.Bounds())
			tc.check(t, img)
		})
	}
}

func TestDecodeFailures(t *testing.T) {
	t.Parallel()
	jpg := encodeJPEG(t, gradient(64, 64))
	random := make([]byte, 512)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range random {
		random[i] = byte(rng.UintN(256))
	}
	random[0] = 'x' // never a known signature

	cases := []struct {
		name   string
		data   []byte
		limits Limits
		code   string
	}{
		{"huge declared png", pngHeaderOnly(t, 100_000, 100_000), bigLimits, event.CodePixelLimit},
		{"wide declared png", pngHeaderOnly(t, 1<<30, 1), bigLimits, event.CodePixelLimit},
		{"one pixel over the limit", encodePNG(t, gradient(10, 10)), Limits{MaxPixels: 99}, event.CodePixelLimit},
		{"jpeg over the limit", jpg, Limits{MaxPixels: 64*64 - 1}, event.CodePixelLimit},
		{"zero limit", jpg, Limits{}, event.CodePixelLimit},
		{"zero width png", pngHeaderOnly(t, 0, 10), bigLimits, event.CodeDecodeError},
		{"header-only png has no pixel data", pngHeaderOnly(t, 100, 100), bigLimits, event.CodeDecodeError},
		{"truncated jpeg", jpg[:len(jpg)/2], bigLimits, event.CodeDecodeError},
		{"jpeg cut inside the header", jpg[:20], bigLimits, event.CodeDecodeError},
		{"jpeg magic then junk", append([]byte{0xFF, 0xD8, 0xFF, 0xE0}, random...), bigLimits, event.CodeDecodeError},
		{"random bytes", random, bigLimits, event.CodeUnsupportedFormat},
		{"text", []byte("hello, this is not an image\n"), bigLimits, event.CodeUnsupportedFormat},
		{"pdf", []byte("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"), bigLimits, event.CodeUnsupportedFormat},
		{"empty", nil, bigLimits, event.CodeUnsupportedFormat},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			img, err := Decode(bytes.NewReader(tc.data), tc.limits)
			require.Nil(t, img)
			requireFailure(t, err, tc.code)
		})
	}
}

func TestDecodeAtTheLimit(t *testing.T) {
	t.Parallel()
	img, err := Decode(bytes.NewReader(encodePNG(t, gradient(10, 10))), Limits{MaxPixels: 100})
	require.NoError(t, err)
	require.Equal(t, 10, img.Bounds().Dx())
}

// TestDecodePixelLimitDoesNotAllocate is not parallel: it reads the
// process-wide allocation counter, which parallel tests would disturb.
func TestDecodePixelLimitDoesNotAllocate(t *testing.T) {
	data := pngHeaderOnly(t, 100_000, 100_000)
	require.Less(t, len(data), 200)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 10 {
		_, err := Decode(bytes.NewReader(data), bigLimits)
		requireFailure(t, err, event.CodePixelLimit)
	}
	runtime.ReadMemStats(&after)
	// Decoding would need 40 GB; the header check needs a few KB.
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(10<<20))
}

func TestRender(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		src    image.Image
		preset string
		w, h   int
	}{
		{"thumb of landscape", gradient(1000, 500), "thumb", 320, 160},
		{"thumb of portrait jpeg", decoded(t, encodeJPEG(t, gradient(500, 1000))), "thumb", 160, 320},
		{"thumb of small image unchanged", gradient(100, 80), "thumb", 100, 80},
		{"preview never upscales", gradient(200, 100), "preview", 200, 100},
		{"resized into 800x600 box", gradient(1000, 2000), "resized", 300, 600},
		{"small of nrgba", filled(256, 64, blue), "small", 128, 32},
		{"square100 of landscape", gradient(400, 200), "square100", 100, 100},
		{"square100 of portrait jpeg", decoded(t, encodeJPEG(t, gradient(200, 400))), "square100", 100, 100},
		{"square100 of small image not upscaled", gradient(50, 30), "square100", 50, 30},
		{"square100 of short wide image", gradient(1000, 50), "square100", 100, 50},
		{"square100 of narrow tall image", gradient(30, 400), "square100", 30, 100},
		{"square100 of exact box", gradient(100, 100), "square100", 100, 100},
		{"square100 of one pixel", gradient(1, 1), "square100", 1, 1},
		{"square100 of sub-image", gradient(600, 600).SubImage(image.Rect(100, 200, 500, 400)), "square100", 100, 100},
		{"thumb of sub-image", gradient(1000, 1000).SubImage(image.Rect(10, 10, 650, 330)), "thumb", 320, 160},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := Render(tc.src, preset(t, tc.preset))
			require.Equal(t, tc.w, out.Bounds().Dx())
			require.Equal(t, tc.h, out.Bounds().Dy())
		})
	}
}

func TestRenderUnchangedReturnsSource(t *testing.T) {
	t.Parallel()
	src := gradient(200, 100)
	require.Same(t, src, Render(src, preset(t, "preview")))
}

func decoded(tb testing.TB, data []byte) image.Image {
	tb.Helper()
	img, _, err := image.Decode(bytes.NewReader(data))
	require.NoError(tb, err)
	return img
}

// thirds is a w x h image whose outer thirds (left/right, or top/bottom
// when vertical) are red and whose middle third is green.
func thirds(w, h int, vertical bool) *image.NRGBA {
	img := filled(w, h, red)
	mid := image.Rect(w/3, 0, 2*w/3, h)
	if vertical {
		mid = image.Rect(0, h/3, w, 2*h/3)
	}
	draw.Draw(img, mid, image.NewUniform(green), image.Point{}, draw.Src)
	return img
}

func TestRenderCropTakesTheCentre(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		src  image.Image
	}{
		{"wide, scaled", thirds(600, 200, false)},
		{"wide, not scaled", thirds(300, 100, false)},
		{"wide, short", thirds(900, 60, false)},
		{"tall, scaled", thirds(200, 600, true)},
		{"wide jpeg, scaled", decoded(t, encodeJPEG(t, thirds(900, 300, false)))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := Render(tc.src, preset(t, "square100"))
			b := out.Bounds()
			r, g, bl, _ := out.At(b.Min.X+b.Dx()/2, b.Min.Y+b.Dy()/2).RGBA()
			require.Greater(t, g>>8, uint32(200), "middle pixel is green")
			require.Less(t, r>>8, uint32(60), "middle pixel is green")
			require.Less(t, bl>>8, uint32(60), "middle pixel is green")
		})
	}
}

// pngIHDR returns the bit depth and colour type of an encoded PNG.
func pngIHDR(tb testing.TB, data []byte) (depth, colorType byte) {
	tb.Helper()
	require.Greater(tb, len(data), 26)
	require.Equal(tb, "IHDR", string(data[12:16]))
	return data[24], data[25]
}

func TestEncodePNGIsEightBit(t *testing.T) {
	t.Parallel()
	deep := image.NewNRGBA64(image.Rect(0, 0, 20, 10))
	draw.Draw(deep, deep.Bounds(), image.NewUniform(color.NRGBA64{R: 0xffff, A: 0x8000}), image.Point{}, draw.Src)
	gray16 := image.NewGray16(image.Rect(0, 0, 20, 10))
	cases := []struct {
		name      string
		src       image.Image
		wantAlpha bool
	}{
		{"ycbcr from jpeg", decoded(t, encodeJPEG(t, gradient(64, 48))), false},
		{"resized ycbcr", Render(decoded(t, encodeJPEG(t, gradient(640, 480))), preset(t, "thumb")), false},
		{"16-bit with alpha", deep, true},
		{"resized 16-bit", Render(deep, rendition.Preset{Name: "x", Width: 10, Height: 10, Mode: rendition.Fit, Format: "png"}), true},
		{"gray16", gray16, false},
		{"nrgba with alpha", filled(20, 10, color.NRGBA{G: 255, A: 10}), true},
		{"paletted", image.NewPaletted(image.Rect(0, 0, 8, 8), palette.WebSafe), false},
		{"sub-image", gradient(100, 100).SubImage(image.Rect(10, 20, 40, 60)), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data, err := Encode(tc.src, preset(t, "preview"))
			require.NoError(t, err)
			depth, ct := pngIHDR(t, data)
			require.Equal(t, byte(8), depth, "bit depth")
			if tc.wantAlpha {
				require.Equal(t, byte(6), ct, "colour type RGBA")
			}
			img, format, err := image.Decode(bytes.NewReader(data))
			require.NoError(t, err)
			require.Equal(t, "png", format)
			switch img.(type) {
			case *image.NRGBA, *image.RGBA:
			default:
				t.Fatalf("decoded as %T, want 8-bit NRGBA or RGBA", img)
			}
			require.Equal(t, tc.src.Bounds().Size(), img.Bounds().Size())
		})
	}
}

func TestEncodePNGKeepsPixels(t *testing.T) {
	t.Parallel()
	src := gradient(50, 40)
	data, err := Encode(src, preset(t, "preview"))
	require.NoError(t, err)
	out := decoded(t, data)
	for _, pt := range []image.Point{{0, 0}, {25, 20}, {49, 39}} {
		require.Equal(t, color.RGBAModel.Convert(src.At(pt.X, pt.Y)), color.RGBAModel.Convert(out.At(pt.X, pt.Y)))
	}
}

func TestEncodeJPEG(t *testing.T) {
	t.Parallel()
	halfRed := filled(16, 16, color.NRGBA{R: 255, A: 128})
	cases := []struct {
		name string
		src  image.Image
		want color.RGBA // expected colour of every pixel, within tolerance
	}{
		{"fully transparent becomes white", filled(16, 16, color.NRGBA{}), color.RGBA{255, 255, 255, 255}},
		{"transparent black becomes white", filled(16, 16, color.NRGBA{R: 0, G: 0, B: 0, A: 0}), color.RGBA{255, 255, 255, 255}},
		{"half-transparent red on white", halfRed, color.RGBA{255, 127, 127, 255}},
		{"opaque green stays green", filled(16, 16, green), color.RGBA{0, 255, 0, 255}},
		{"transparent 16-bit becomes white", image.NewNRGBA64(image.Rect(0, 0, 16, 16)), color.RGBA{255, 255, 255, 255}},
		{"transparent paletted becomes white", image.NewPaletted(image.Rect(0, 0, 16, 16), color.Palette{color.Transparent}), color.RGBA{255, 255, 255, 255}},
		{"gray", image.NewGray(image.Rect(0, 0, 16, 16)), color.RGBA{0, 0, 0, 255}},
		{"transparent sub-image", filled(64, 64, color.NRGBA{}).SubImage(image.Rect(8, 8, 24, 24)), color.RGBA{255, 255, 255, 255}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data, err := Encode(tc.src, preset(t, "thumb"))
			require.NoError(t, err)
			out, format, err := image.Decode(bytes.NewReader(data))
			require.NoError(t, err)
			require.Equal(t, "jpeg", format)
			require.Equal(t, tc.src.Bounds().Size(), out.Bounds().Size())
			b := out.Bounds()
			for _, pt := range []image.Point{{0, 0}, {8, 8}, {15, 15}} {
				got := color.RGBAModel.Convert(out.At(b.Min.X+pt.X, b.Min.Y+pt.Y)).(color.RGBA)
				require.InDelta(t, tc.want.R, got.R, 8, "R at %v: %v", pt, got)
				require.InDelta(t, tc.want.G, got.G, 8, "G at %v: %v", pt, got)
				require.InDelta(t, tc.want.B, got.B, 8, "B at %v: %v", pt, got)
			}
		})
	}
}

func TestEncodeJPEGQuality(t *testing.T) {
	t.Parallel()
	src := decoded(t, encodeJPEG(t, gradient(200, 200)))
	noisy := image.NewRGBA(image.Rect(0, 0, 128, 128))
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range noisy.Pix {
		noisy.Pix[i] = byte(rng.UintN(256))
	}
	for _, img := range []image.Image{src, noisy} {
		low, err := Encode(img, rendition.Preset{Format: "jpeg", Quality: 10})
		require.NoError(t, err)
		high, err := Encode(img, rendition.Preset{Format: "jpeg", Quality: 95})
		require.NoError(t, err)
		require.Less(t, len(low), len(high))
	}
}

// translucentBand is a 400x100 image, black at half alpha with a white
// half-alpha band at x 190..209: Lanczos overshoots at the band's edges.
func translucentBand(kind string) image.Image {
	black, white := color.NRGBA{A: 128}, color.NRGBA{R: 255, G: 255, B: 255, A: 128}
	var img draw.Image
	switch kind {
	case "nrgba":
		img = image.NewNRGBA(image.Rect(0, 0, 400, 100))
	case "nrgba64":
		img = image.NewNRGBA64(image.Rect(0, 0, 400, 100))
	case "paletted":
		img = image.NewPaletted(image.Rect(0, 0, 400, 100), color.Palette{black, white})
	}
	for y := range 100 {
		for x := range 400 {
			c := black
			if x >= 190 && x < 210 {
				c = white
			}
			img.Set(x, y, c)
		}
	}
	return img
}

// TestRenderTranslucentEdges guards against nfnt/resize leaving colour
// above alpha, which Go's conversions wrap: white edges turned black.
func TestRenderTranslucentEdges(t *testing.T) {
	t.Parallel()
	fit := rendition.Preset{Name: "fit", Width: 320, Height: 320, Mode: rendition.Fit, Format: "png"}
	crop := rendition.Preset{Name: "crop", Width: 320, Height: 80, Mode: rendition.Crop, Format: "jpeg", Quality: 90}
	for _, kind := range []string{"nrgba", "nrgba64", "paletted"} {
		for _, p := range []rendition.Preset{fit, crop, preset(t, "thumb")} {
			t.Run(kind+"/"+p.Name, func(t *testing.T) {
				t.Parallel()
				out := Render(translucentBand(kind), p)
				b := out.Bounds()
				require.Equal(t, 320, b.Dx())
				for y := b.Min.Y; y < b.Max.Y; y++ {
					for x := b.Min.X; x < b.Max.X; x++ {
						r, g, bl, a := out.At(x, y).RGBA()
						if r > a || g > a || bl > a {
							t.Fatalf("pixel %d,%d has colour above alpha: %v", x, y, out.At(x, y))
						}
					}
				}
				data, err := Encode(out, p)
				require.NoError(t, err)
				dec := decoded(t, data)
				y := dec.Bounds().Dy() / 2
				for x := range dec.Bounds().Dx() {
					c := color.NRGBAModel.Convert(dec.At(x, y)).(color.NRGBA)
					inBand := x >= 190*320/400 && x < 210*320/400 // 152..167, aligned with the source
					switch {
					case p.Format == "jpeg" && c.R < 100: // black at half alpha on white is 127
						t.Fatalf("x=%d: %v is darker than the image allows", x, c)
					case inBand && c.R < 200:
						t.Fatalf("x=%d inside the white band: %v", x, c)
					}
				}
			})
		}
	}
}
