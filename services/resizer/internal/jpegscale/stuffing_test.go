package jpegscale

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"math"
	"testing"
)

// noisy is uniform noise: at quality 100 its entropy-coded data is close
// to random bytes, so about one byte in 256 is a stuffed 0xff00, at every
// offset relative to refillFast's 8-byte loads.
func noisy(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	seed := uint32(7)
	for i := range img.Pix {
		seed = seed*1664525 + 1013904223
		img.Pix[i] = uint8(seed >> 24)
	}
	for i := 3; i < len(img.Pix); i += 4 {
		img.Pix[i] = 255
	}
	return img
}

// chunkReader returns at most n bytes per Read, so that the decoder's
// buffer ends (where refillFast stands down) fall at varied offsets.
type chunkReader struct {
	r io.Reader
	n int
}

func (c chunkReader) Read(p []byte) (int, error) {
	return c.r.Read(p[:min(len(p), c.n)])
}

// TestDecodeScaledStuffedBytes decodes entropy-coded data full of stuffed
// 0xff00 bytes, read whole and in odd-sized chunks: the full-size decode
// must match image/jpeg exactly, and every scale must not depend on how
// the input arrives.
func TestDecodeScaledStuffedBytes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		img  image.Image
	}{
		{"colour", noisy(157, 91)},
		{"grayscale", gray(noisy(131, 77))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			if err := jpeg.Encode(&buf, tc.img, &jpeg.Options{Quality: 100}); err != nil {
				t.Fatal(err)
			}
			data := buf.Bytes()
			if n := bytes.Count(data, []byte{0xff, 0x00}); n < 50 {
				t.Fatalf("only %d stuffed bytes: the fixture does not exercise the 0xff fallback", n)
			}
			full, err := jpeg.Decode(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range []int{1, 2, 4, 8} {
				want, err := DecodeScaled(bytes.NewReader(data), s)
				if err != nil {
					t.Fatalf("1/%d: %v", s, err)
				}
				if s == 1 {
					if p := psnr(want, full); !math.IsInf(p, 1) {
						t.Fatalf("full-size decode differs from image/jpeg (PSNR %.1f dB)", p)
					}
				}
				for _, n := range []int{1, 7, 13, 4099} {
					got, err := DecodeScaled(chunkReader{bytes.NewReader(data), n}, s)
					if err != nil {
						t.Fatalf("1/%d, %d-byte reads: %v", s, n, err)
					}
					if !sameImage(got, want) {
						t.Fatalf("1/%d, %d-byte reads: the image differs from the one read whole", s, n)
					}
				}
			}
		})
	}
}

// sameImage reports whether a and b have the same bounds and pixels.
func sameImage(a, b image.Image) bool {
	if a.Bounds() != b.Bounds() {
		return false
	}
	r := a.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if color.RGBAModel.Convert(a.At(x, y)) != color.RGBAModel.Convert(b.At(x, y)) {
				return false
			}
		}
	}
	return true
}

// A sequential scan with an end-of-band run (an EOBn symbol, meant for
// progressive scans) decodes as image/jpeg decodes it: the run skips the
// ACs of the blocks it covers. (A tidy-up once dropped the run's use in
// sequential scans: the file then failed with "bad Huffman code".)
func TestSequentialEOBRunAsImageJPEG(t *testing.T) {
	data := readFixture(t, "sequential-eobrun.jpg")
	want, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("image/jpeg: %v", err)
	}
	got, err := DecodeScaled(bytes.NewReader(data), 1)
	if err != nil {
		t.Fatalf("DecodeScaled: %v", err)
	}
	if !sameImage(got, want) {
		t.Error("the decode differs from image/jpeg's")
	}
	for _, s := range []int{2, 4, 8} {
		if _, err := DecodeScaled(bytes.NewReader(data), s); err != nil {
			t.Errorf("1/%d: %v", s, err)
		}
	}
}
