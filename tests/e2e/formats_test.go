package e2e

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
)

// Named colours of the test images.
var (
	red   = color.NRGBA{255, 0, 0, 255}
	green = color.NRGBA{0, 255, 0, 255}
	blue  = color.NRGBA{0, 0, 255, 255}
	white = color.NRGBA{255, 255, 255, 255}
)

// nearest names the colour of c among the test colours (and transparent).
func nearest(c color.Color) string {
	n := color.NRGBAModel.Convert(c).(color.NRGBA)
	if n.A < 128 {
		return "transparent"
	}
	best, bestD := "", 1<<30
	for name, ref := range map[string]color.NRGBA{"red": red, "green": green, "blue": blue, "white": white} {
		d := sq(int(n.R)-int(ref.R)) + sq(int(n.G)-int(ref.G)) + sq(int(n.B)-int(ref.B))
		if d < bestD {
			best, bestD = name, d
		}
	}
	return best
}

func sq(x int) int { return x * x }

// quadrants is a w x h image with red, green, blue and white quadrants
// (top-left, top-right, bottom-left, bottom-right).
func quadrants(w, h int, tl, tr, bl, br color.NRGBA) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := tl
			switch {
			case x >= w/2 && y < h/2:
				c = tr
			case x < w/2 && y >= h/2:
				c = bl
			case x >= w/2 && y >= h/2:
				c = br
			}
			img.SetNRGBA(x, y, c)
		}
	}
	return img
}

// corners names the colours near the four corners of img (a quarter in
// from each side, away from edges that resampling blurs).
func corners(img image.Image) [4]string {
	b := img.Bounds()
	x0, x1 := b.Min.X+b.Dx()/4, b.Min.X+3*b.Dx()/4
	y0, y1 := b.Min.Y+b.Dy()/4, b.Min.Y+3*b.Dy()/4
	return [4]string{nearest(img.At(x0, y0)), nearest(img.At(x1, y0)), nearest(img.At(x0, y1)), nearest(img.At(x1, y1))}
}

// withEXIFOrientation inserts an APP1 EXIF segment with the orientation
// tag right after the JPEG's SOI marker, in the given byte order.
func withEXIFOrientation(tb testing.TB, jpg []byte, o uint16, bo binary.ByteOrder) []byte {
	tb.Helper()
	require.Equal(tb, []byte{0xFF, 0xD8}, jpg[:2])
	var tiffHdr bytes.Buffer
	if bo == binary.LittleEndian {
		tiffHdr.WriteString("II")
	} else {
		tiffHdr.WriteString("MM")
	}
	w := func(v any) { require.NoError(tb, binary.Write(&tiffHdr, bo, v)) }
	w(uint16(42))
	w(uint32(8))      // IFD0 right after the header
	w(uint16(2))      // two entries
	w(uint16(0x010F)) // Make, ASCII, 4 bytes inline: an entry before the one we want
	w(uint16(2))
	w(uint32(4))
	tiffHdr.WriteString("Go!\x00")
	w(uint16(0x0112)) // Orientation, SHORT, 1
	w(uint16(3))
	w(uint32(1))
	w(o)
	w(uint16(0))
	w(uint32(0)) // no next IFD
	payload := append([]byte("Exif\x00\x00"), tiffHdr.Bytes()...)
	seg := []byte{0xFF, 0xE1, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(payload)+2))
	out := append([]byte{0xFF, 0xD8}, seg...)
	out = append(out, payload...)
	return append(out, jpg[2:]...)
}

func encodeImageJPEG(tb testing.TB, img image.Image) []byte {
	tb.Helper()
	var b bytes.Buffer
	require.NoError(tb, jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}))
	return b.Bytes()
}

func encodeImagePNG(tb testing.TB, img image.Image) []byte {
	tb.Helper()
	var b bytes.Buffer
	require.NoError(tb, png.Encode(&b, img))
	return b.Bytes()
}

func fixture(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(tb, err)
	return b
}

// pngBitDepth reads the bit depth from a PNG's IHDR.
func pngBitDepth(tb testing.TB, data []byte) int {
	tb.Helper()
	require.Greater(tb, len(data), 25)
	require.Equal(tb, "IHDR", string(data[12:16]))
	return int(data[24])
}

// decodeFile fetches a rendition and decodes it.
func decodeFile(tb testing.TB, api string, rd renditionJSON) (image.Image, []byte, *http.Response) {
	tb.Helper()
	resp, body := getFile(tb, api, rd.FileURL)
	require.Equal(tb, http.StatusOK, resp.StatusCode, rd.FileURL)
	img, format, err := image.Decode(bytes.NewReader(body))
	require.NoError(tb, err, rd.FileURL)
	require.Equal(tb, rd.Format, format, rd.FileURL)
	require.Equal(tb, [2]int{rd.Width, rd.Height}, [2]int{img.Bounds().Dx(), img.Bounds().Dy()}, rd.FileURL)
	require.Equal(tb, rd.Bytes, int64(len(body)), rd.FileURL)
	return img, body, resp
}

// TestFormatsEndToEnd uploads every input format photopipe reads, and the
// eight EXIF orientations, through the four built services, and checks
// the original's reported size and the pixels of the thumb (JPEG) and
// preview (8-bit PNG) renditions; then the failures: undecodable data
// behind a valid signature, and a text file named .jpg given by URL.
func TestFormatsEndToEnd(t *testing.T) {
	env := NewEnv(t)
	openAPI(env)
	api := env.StartPipeline(1)
	raft := raftFiles(t)

	gray := image.NewGray(image.Rect(0, 0, 300, 200))
	for i := range gray.Pix {
		gray.Pix[i] = uint8(i % 251)
	}
	deep := image.NewNRGBA64(image.Rect(0, 0, 420, 280))
	for y := range 280 {
		for x := range 420 {
			deep.SetNRGBA64(x, y, color.NRGBA64{R: uint16(x * 156), G: uint16(y * 234), B: 0x8000, A: 0xffff})
		}
	}
	// Left half opaque red, right half transparent.
	alpha := quadrants(400, 300, red, color.NRGBA{}, red, color.NRGBA{})
	redBlue := [4]string{"red", "blue", "red", "blue"}
	var bmpData, tiffData bytes.Buffer
	require.NoError(t, bmp.Encode(&bmpData, quadrants(500, 300, red, green, blue, white)))
	require.NoError(t, tiff.Encode(&tiffData, quadrants(640, 480, red, green, blue, white), &tiff.Options{Compression: tiff.Deflate}))

	type want struct {
		w, h        int       // the original, upright
		contentType string    // detected
		thumb       [4]string // colours at the corners of the thumb; empty: not checked
		preview     [4]string // of the preview (PNG, keeps alpha)
	}
	cases := map[string]struct {
		data []byte
		want want
	}{
		"baseline.jpg":    {encodeImageJPEG(t, quadrants(800, 600, red, green, blue, white)), want{800, 600, "image/jpeg", [4]string{"red", "green", "blue", "white"}, [4]string{"red", "green", "blue", "white"}}},
		"progressive.jpg": {fixture(t, "progressive.jpg"), want{400, 300, "image/jpeg", redBlue, redBlue}},
		"cmyk.jpg":        {fixture(t, "cmyk.jpg"), want{400, 300, "image/jpeg", redBlue, redBlue}},
		"grayscale.jpg":   {encodeImageJPEG(t, gray), want{300, 200, "image/jpeg", [4]string{}, [4]string{}}},
		"raft-1.jpg":      {raft["1.jpg"], want{178, 218, "image/jpeg", [4]string{}, [4]string{}}},
		// A JPEG named .png: the bytes decide.
		"output.png":        {raft["output.png.actually-jpeg"], want{178, 218, "image/jpeg", [4]string{}, [4]string{}}},
		"palette.png":       {encodePalettedPNG(t, 300, 900), want{300, 900, "image/png", [4]string{}, [4]string{}}},
		"alpha.png":         {encodeImagePNG(t, alpha), want{400, 300, "image/png", [4]string{"red", "white", "red", "white"}, [4]string{"red", "transparent", "red", "transparent"}}},
		"sixteen-bit.png":   {encodeImagePNG(t, deep), want{420, 280, "image/png", [4]string{}, [4]string{}}},
		"animated.gif":      {encodeGIF(t, 640, 480), want{640, 480, "image/gif", [4]string{}, [4]string{}}},
		"lossy.webp":        {fixture(t, "lossy.webp"), want{400, 300, "image/webp", redBlue, redBlue}},
		"alpha.webp":        {fixture(t, "alpha.webp"), want{400, 300, "image/webp", [4]string{"red", "white", "red", "white"}, [4]string{"red", "transparent", "red", "transparent"}}},
		"quadrants.bmp":     {bmpData.Bytes(), want{500, 300, "image/bmp", [4]string{"red", "green", "blue", "white"}, [4]string{"red", "green", "blue", "white"}}},
		"quadrants.tiff":    {tiffData.Bytes(), want{640, 480, "image/tiff", [4]string{"red", "green", "blue", "white"}, [4]string{"red", "green", "blue", "white"}}},
		"png-then-junk.png": {append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte("junk"), 100)...), want{}},
	}
	// The upright image is 600x400 with red, green, blue, white quadrants;
	// each orientation stores it turned so that applying the tag restores
	// it. Corners of the stored image (TL, TR, BL, BR), worked out by hand
	// from the EXIF definitions.
	stored := map[uint16][4]color.NRGBA{
		1: {red, green, blue, white},
		2: {green, red, white, blue}, // mirrored left-right
		3: {white, blue, green, red}, // turned 180
		4: {blue, white, red, green}, // mirrored top-bottom
		5: {red, blue, green, white}, // transposed
		6: {green, white, red, blue}, // turned 90 counter-clockwise: shown after 90 clockwise
		7: {white, green, blue, red}, // transversed
		8: {blue, red, white, green}, // turned 90 clockwise: shown after 90 counter-clockwise
	}
	for o, c := range stored {
		w, h := 600, 400
		if o >= 5 {
			w, h = h, w
		}
		bo := binary.ByteOrder(binary.BigEndian)
		if o%2 == 0 {
			bo = binary.LittleEndian
		}
		name := fmt.Sprintf("orientation-%d.jpg", o)
		data := withEXIFOrientation(t, encodeImageJPEG(t, quadrants(w, h, c[0], c[1], c[2], c[3])), o, bo)
		upright := [4]string{"red", "green", "blue", "white"}
		cases[name] = struct {
			data []byte
			want want
		}{data, want{600, 400, "image/jpeg", upright, upright}}
	}

	parts := []part{{field: "renditions", data: []byte("thumb,preview")}}
	for name, tc := range cases {
		parts = append(parts, filePart(name, tc.data))
	}
	var resp uploadResponse
	require.Equal(t, http.StatusAccepted, postMultipart(t, api+"/photos/upload", &resp, parts...))
	require.Len(t, resp.Photos, len(cases))
	var ids []string
	for _, p := range resp.Photos {
		ids = append(ids, p.UUID)
	}

	// A text file named .jpg, by URL, fails in the pipeline.
	src := ImageServer(t, map[string][]byte{"notes.jpg": []byte("these are words, not pixels\n")})
	var created struct{ Photos []detailedPhoto }
	require.Equal(t, http.StatusCreated, Call(t, http.MethodPost, api+"/photos",
		map[string]any{"url": src.URL + "/notes.jpg", "process": true}, &created))
	textID := created.Photos[0].UUID
	start := time.Now()
	final := waitPhotos(t, api, append(ids, textID), 120*time.Second)
	t.Logf("%d photos final in %s", len(ids)+1, time.Since(start).Round(time.Millisecond))

	text := final[textID]
	assert.Equal(t, "failed", text.Status)
	require.NotNil(t, text.Failure)
	assert.Equal(t, "unsupported_format", text.Failure.Code)

	for _, up := range resp.Photos {
		p := final[up.UUID]
		tc := cases[p.Filename]
		t.Run(p.Filename, func(t *testing.T) {
			if p.Filename == "png-then-junk.png" {
				assert.Equal(t, "failed", p.Status)
				require.NotNil(t, p.Failure)
				assert.Equal(t, "decode_error", p.Failure.Code)
				assert.Equal(t, "resize", p.Failure.Stage)
				assert.Empty(t, p.Thumbnails)
				return
			}
			require.Equal(t, "completed", p.Status, "%+v", p.Failure)
			require.NotNil(t, p.Original)
			assert.Equal(t, tc.want.contentType, p.Original.ContentType)
			assert.Equal(t, [2]int{tc.want.w, tc.want.h}, [2]int{p.Original.Width, p.Original.Height}, "original size, upright")
			assert.Equal(t, 1, p.Original.Pages)

			thumb := p.rendition(t, "thumb", 0)
			assert.Equal(t, "jpeg", thumb.Format)
			tw, th := fitIn(tc.want.w, tc.want.h, 320, 320)
			assert.Equal(t, [2]int{tw, th}, [2]int{thumb.Width, thumb.Height}, "thumb fits 320x320, aspect kept, never upscaled")
			img, _, r := decodeFile(t, api, thumb)
			assert.Equal(t, "image/jpeg", r.Header.Get("Content-Type"))
			if tc.want.thumb != ([4]string{}) {
				assert.Equal(t, tc.want.thumb, corners(img), "thumb pixels")
			}

			preview := p.rendition(t, "preview", 0)
			assert.Equal(t, "png", preview.Format)
			assert.Equal(t, [2]int{tc.want.w, tc.want.h}, [2]int{preview.Width, preview.Height}, "preview is never upscaled")
			img, body, r := decodeFile(t, api, preview)
			assert.Equal(t, "image/png", r.Header.Get("Content-Type"))
			assert.Equal(t, 8, pngBitDepth(t, body), "PNG output is 8-bit")
			if tc.want.preview != ([4]string{}) {
				assert.Equal(t, tc.want.preview, corners(img), "preview pixels")
			}
		})
	}
}

// fitIn is the size of w x h fitted in a box, never upscaled (rounded).
func fitIn(w, h, bw, bh int) (int, int) {
	if w <= bw && h <= bh {
		return w, h
	}
	if w*bh >= h*bw {
		return bw, max(1, (h*bw+w/2)/w)
	}
	return max(1, (w*bh+h/2)/h), bh
}
