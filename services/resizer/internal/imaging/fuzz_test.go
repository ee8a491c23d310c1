package imaging

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"

	"github.com/photopipe/photopipe/shared/event"
	"github.com/photopipe/photopipe/shared/imagetype"
	"github.com/photopipe/photopipe/shared/rendition"
)

// fuzzMaxPixels keeps each decode small, so the fuzzer spends its time on
// headers and structure rather than on pixels.
const fuzzMaxPixels = 1 << 18

// fuzzHang is how long one input may take before it counts as a hang.
const fuzzHang = 10 * time.Second

// pngChunk encodes one PNG chunk with its CRC.
func pngChunk(kind string, data []byte) []byte {
	var b bytes.Buffer
	_ = binary.Write(&b, binary.BigEndian, uint32(len(data)))
	b.WriteString(kind)
	b.Write(data)
	_ = binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(append([]byte(kind), data...)))
	return b.Bytes()
}

// pixelBombPNG is a few KB of PNG whose header declares w x h grey pixels,
// followed by a short run of compressed zero rows.
func pixelBombPNG(w, h uint32) []byte {
	var ihdr bytes.Buffer
	_ = binary.Write(&ihdr, binary.BigEndian, [2]uint32{w, h})
	ihdr.Write([]byte{8, 0, 0, 0, 0}) // 8-bit greyscale
	var idat bytes.Buffer
	zw := zlib.NewWriter(&idat)
	_, _ = zw.Write(make([]byte, 256<<10))
	_ = zw.Close()
	out := []byte("\x89PNG\r\n\x1a\n")
	out = append(out, pngChunk("IHDR", ihdr.Bytes())...)
	out = append(out, pngChunk("IDAT", idat.Bytes())...)
	return append(out, pngChunk("IEND", nil)...)
}

// hugeJPEG rewrites the frame header (SOF) of a real JPEG to declare
// 65535 x 65535 pixels, the most JPEG can say.
func hugeJPEG(jpg []byte) []byte {
	out := bytes.Clone(jpg)
	for i := 2; i+9 < len(out); i++ {
		if out[i] == 0xFF && (out[i+1] == 0xC0 || out[i+1] == 0xC1 || out[i+1] == 0xC2) {
			copy(out[i+5:i+9], []byte{0xFF, 0xFF, 0xFF, 0xFF})
			return out
		}
	}
	return out
}

func encoded(tb testing.TB, enc func(*bytes.Buffer, image.Image) error) []byte {
	tb.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, 12, 8))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	var b bytes.Buffer
	if err := enc(&b, img); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

// decodeSeeds are real images (the sample photos, the formats' test
// files, one small image per format) and hostile ones.
func decodeSeeds(tb testing.TB) [][]byte {
	tb.Helper()
	var seeds [][]byte
	for _, glob := range []string{"../../../../../shared/data/raft/*.jpg", "testdata/*"} {
		paths, _ := filepath.Glob(glob)
		for _, p := range paths {
			if b, err := os.ReadFile(p); err == nil && len(b) < 64<<10 {
				seeds = append(seeds, b)
			}
		}
	}
	jpg := encoded(tb, func(b *bytes.Buffer, m image.Image) error { return jpeg.Encode(b, m, nil) })
	seeds = append(seeds,
		jpg,
		encoded(tb, func(b *bytes.Buffer, m image.Image) error { return png.Encode(b, m) }),
		encoded(tb, func(b *bytes.Buffer, m image.Image) error { return gif.Encode(b, m, nil) }),
		encoded(tb, func(b *bytes.Buffer, m image.Image) error { return bmp.Encode(b, m) }),
		encoded(tb, func(b *bytes.Buffer, m image.Image) error { return tiff.Encode(b, m, nil) }),
		encoded(tb, func(b *bytes.Buffer, m image.Image) error {
			return tiff.Encode(b, m, &tiff.Options{Compression: tiff.Deflate, Predictor: true})
		}),
		pixelBombPNG(100000, 100000),
		pixelBombPNG(1, 1<<31-1),
		pixelBombPNG(0, 0),
		hugeJPEG(jpg),
		jpg[:len(jpg)/2], // truncated
		jpg[:3],
		[]byte("GIF89a\xff\xff\xff\xff\x00\x00\x00;"), // a 65535x65535 screen, no frame
		[]byte("BM\x00\x00\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00\x28\x00\x00\x00\xa0\x86\x01\x00\xa0\x86\x01\x00\x01\x00\x18\x00"), // 100000x100000 BMP
		[]byte("PK\x03\x04\x14\x00\x00\x00\x08\x00"),
		[]byte("<html><body>Not Found</body></html>"),
		nil,
	)
	return seeds
}

// FuzzDecode runs the resizer's path for untrusted files: sniff the format,
// read the EXIF orientation, read the header, refuse over the pixel limit,
// decode. Nothing panics, every refusal is a Failure with a specific code,
// and no decoded image is over the limit.
func FuzzDecode(f *testing.F) {
	for _, s := range decodeSeeds(f) {
		f.Add(s)
	}
	codes := map[string]bool{event.CodeUnsupportedFormat: true, event.CodeDecodeError: true, event.CodePixelLimit: true}
	f.Fuzz(func(t *testing.T, data []byte) {
		// A hang is a failure too: the panic kills the worker, and the
		// fuzzer keeps the input in testdata/fuzz.
		watchdog := time.AfterFunc(fuzzHang, func() { panic(fmt.Sprintf("decoding %d bytes took over %s", len(data), fuzzHang)) })
		defer watchdog.Stop()
		_ = imagetype.Detect(data)
		r := bytes.NewReader(data)
		if _, err := imagetype.ReadOrientation(r); err != nil {
			t.Fatalf("ReadOrientation: %v (a bytes.Reader always rewinds)", err)
		}
		img, err := Decode(r, Limits{MaxPixels: fuzzMaxPixels})
		if err != nil {
			fl, ok := event.AsFailure(err)
			if !ok || !codes[fl.Code] {
				t.Fatalf("Decode failed with %v (%T), want a Failure with a decoding code", err, err)
			}
			return
		}
		b := img.Bounds()
		if b.Empty() || int64(b.Dx())*int64(b.Dy()) > fuzzMaxPixels {
			t.Fatalf("Decode returned %v, limit %d pixels", b, fuzzMaxPixels)
		}
		_ = img.At(b.Min.X, b.Min.Y)
		_ = color.NRGBAModel.Convert(img.At(b.Max.X-1, b.Max.Y-1))
	})
}

// TestDecodeRefusesPixelBombsFromTheHeader checks the hostile seeds with
// the production limit: refused as pixel_limit, without decoding.
func TestDecodeRefusesPixelBombsFromTheHeader(t *testing.T) {
	t.Parallel()
	jpg := encoded(t, func(b *bytes.Buffer, m image.Image) error { return jpeg.Encode(b, m, nil) })
	for name, data := range map[string][]byte{
		"png 100000x100000": pixelBombPNG(100000, 100000),
		"jpeg 65535x65535":  hugeJPEG(jpg),
	} {
		require := func(cond bool, format string, args ...any) {
			t.Helper()
			if !cond {
				t.Fatalf(name+": "+format, args...)
			}
		}
		require(len(data) < 8<<10, "%d bytes, want a few KB", len(data))
		_, err := Decode(bytes.NewReader(data), Limits{MaxPixels: 100_000_000})
		fl, ok := event.AsFailure(err)
		require(ok && fl.Code == event.CodePixelLimit, "got %v, want pixel_limit", err)
	}
}

// FuzzRenderImage runs the whole thumbnail path on untrusted files: JPEGs
// are decoded at a reduced scale (jpegscale), then box pre-shrink,
// Lanczos3 and encoding. Nothing panics, refusals are Failures with a
// decoding code, and every rendition has the size the preset gives the
// original.
func FuzzRenderImage(f *testing.F) {
	for _, s := range decodeSeeds(f) {
		f.Add(s, uint8(0))
	}
	codes := map[string]bool{event.CodeUnsupportedFormat: true, event.CodeDecodeError: true, event.CodePixelLimit: true}
	presets := []rendition.Preset{
		{Name: "t", Width: 16, Height: 16, Mode: rendition.Fit, Format: "jpeg", Quality: 80},
		{Name: "c", Width: 5, Height: 7, Mode: rendition.Crop, Format: "png"},
	}
	f.Fuzz(func(t *testing.T, data []byte, orient uint8) {
		watchdog := time.AfterFunc(fuzzHang, func() { panic(fmt.Sprintf("rendering %d bytes took over %s", len(data), fuzzHang)) })
		defer watchdog.Stop()
		o := imagetype.Orientation(orient % 9)
		res, err := RenderImage(bytes.NewReader(data), presets, o, Limits{MaxPixels: fuzzMaxPixels})
		if err != nil {
			fl, ok := event.AsFailure(err)
			if !ok || !codes[fl.Code] {
				t.Fatalf("RenderImage failed with %v (%T), want a Failure with a decoding code", err, err)
			}
			return
		}
		w, h := rendition.FitSize(res.Width, res.Height, 16, 16)
		if got := res.Renditions[0]; got.Width != w || got.Height != h {
			t.Fatalf("thumbnail of %dx%d is %dx%d, want %dx%d", res.Width, res.Height, got.Width, got.Height, w, h)
		}
	})
}
