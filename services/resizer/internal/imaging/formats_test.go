package imaging

import (
	"bytes"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"

	"github.com/photopipe/photopipe/shared/rendition"
)

// TestDecodeFormats reads every format photopipe accepts besides those of
// TestDecode: fixtures made with cjpeg, ImageMagick and cwebp (400x300, left
// half red, right half blue; alpha.webp transparent on the right), and
// BMP and TIFF written here.
func TestDecodeFormats(t *testing.T) {
	t.Parallel()
	fixture := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		require.NoError(t, err)
		return b
	}
	quads := quadrants(64, 48, [4]color.NRGBA{red, qGreen, qBlue, qWhite})
	var bmpData, tiffData, tiffLZW bytes.Buffer
	require.NoError(t, bmp.Encode(&bmpData, quads))
	require.NoError(t, tiff.Encode(&tiffData, quads, &tiff.Options{Compression: tiff.Deflate}))
	require.NoError(t, tiff.Encode(&tiffLZW, image.NewGray16(image.Rect(0, 0, 30, 20)), nil))

	rb := [4]color.NRGBA{red, qBlue, red, qBlue}
	transparent := color.NRGBA{}
	cases := []struct {
		name    string
		data    []byte
		w, h    int
		typ     image.Image
		corners *[4]color.NRGBA
	}{
		{"progressive jpeg", fixture("progressive.jpg"), 400, 300, &image.YCbCr{}, &rb},
		{"cmyk jpeg", fixture("cmyk.jpg"), 400, 300, &image.CMYK{}, &rb},
		{"lossy webp", fixture("lossy.webp"), 400, 300, &image.YCbCr{}, &rb},
		{"lossless webp with alpha", fixture("alpha.webp"), 400, 300, &image.NRGBA{}, &[4]color.NRGBA{red, transparent, red, transparent}},
		{"bmp", bmpData.Bytes(), 64, 48, nil, &[4]color.NRGBA{red, qGreen, qBlue, qWhite}},
		{"tiff deflate", tiffData.Bytes(), 64, 48, nil, &[4]color.NRGBA{red, qGreen, qBlue, qWhite}},
		{"tiff 16-bit gray", tiffLZW.Bytes(), 30, 20, &image.Gray16{}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			img, err := Decode(bytes.NewReader(tc.data), bigLimits)
			require.NoError(t, err)
			require.Equal(t, image.Rect(0, 0, tc.w, tc.h), img.Bounds())
			if tc.typ != nil {
				require.IsType(t, tc.typ, img)
			}
			if tc.corners != nil {
				got := cornerColours(img)
				for i := range got {
					require.InDelta(t, tc.corners[i].R, got[i].R, 40, "corner %d: %v", i, got[i])
					require.InDelta(t, tc.corners[i].G, got[i].G, 40, "corner %d: %v", i, got[i])
					require.InDelta(t, tc.corners[i].B, got[i].B, 40, "corner %d: %v", i, got[i])
					require.InDelta(t, tc.corners[i].A, got[i].A, 1, "corner %d: %v", i, got[i])
				}
			}
			// Every rendition encodes: JPEG and 8-bit PNG.
			for _, name := range []string{"thumb", "preview"} {
				data, err := Encode(Render(img, preset(t, name)), preset(t, name))
				require.NoError(t, err)
				cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
				require.NoError(t, err)
				require.Equal(t, preset(t, name).Format, format)
				w, h := rendition.FitSize(tc.w, tc.h, preset(t, name).Width, preset(t, name).Height)
				require.Equal(t, [2]int{w, h}, [2]int{cfg.Width, cfg.Height})
				if format == "png" {
					require.Equal(t, byte(8), data[24], "8-bit PNG")
				}
			}
		})
	}
}

func TestDecodeFormatsPixelLimit(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"cmyk.jpg", "progressive.jpg", "lossy.webp", "alpha.webp"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		require.NoError(t, err)
		_, err = Decode(bytes.NewReader(data), Limits{MaxPixels: 400*300 - 1})
		requireFailure(t, err, "pixel_limit")
	}
}
