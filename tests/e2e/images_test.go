package e2e

import (
	"bytes"
	"image"
	"image/color"
	"image/color/palette"
	"image/gif"
	"image/jpeg"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// raftDir holds real JPEGs (one named .png) and a PDF.
const raftDir = "../../../shared/data/raft"

func gradient(w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetNRGBA(x, y, color.NRGBA{uint8(x * 255 / w), uint8(y * 255 / h), uint8((x + y) % 256), 255})
		}
	}
	return img
}

func encodeJPEG(tb testing.TB, w, h int) []byte {
	var b bytes.Buffer
	require.NoError(tb, jpeg.Encode(&b, gradient(w, h), &jpeg.Options{Quality: 80}))
	return b.Bytes()
}

func encodePNG(tb testing.TB, w, h int) []byte {
	var b bytes.Buffer
	require.NoError(tb, png.Encode(&b, gradient(w, h)))
	return b.Bytes()
}

func encodePalettedPNG(tb testing.TB, w, h int) []byte {
	img := image.NewPaletted(image.Rect(0, 0, w, h), palette.Plan9)
	for y := range h {
		for x := range w {
			img.SetColorIndex(x, y, uint8((x/8+y/8)%256))
		}
	}
	var b bytes.Buffer
	require.NoError(tb, png.Encode(&b, img))
	return b.Bytes()
}

func encodeGIF(tb testing.TB, w, h int) []byte {
	frame := func(shift int) *image.Paletted {
		img := image.NewPaletted(image.Rect(0, 0, w, h), palette.WebSafe)
		for y := range h {
			for x := range w {
				img.SetColorIndex(x, y, uint8((x+y+shift)%216))
			}
		}
		return img
	}
	var b bytes.Buffer
	require.NoError(tb, gif.EncodeAll(&b, &gif.GIF{Image: []*image.Paletted{frame(0), frame(50)}, Delay: []int{10, 10}}))
	return b.Bytes()
}

// ImageServer serves files by path on loopback; unknown paths are 404.
// The files are written to a directory first and served from there, with
// their Content-Length, by sendfile as a web server would: the benchmarks
// share the machine's CPUs with this server, and writing every body from
// memory cost it (and them) a copy per download.
func ImageServer(tb testing.TB, files map[string][]byte) *httptest.Server {
	tb.Helper()
	dir := tb.TempDir()
	paths := make(map[string]string, len(files))
	i := 0
	for name, b := range files {
		p := filepath.Join(dir, strconv.Itoa(i))
		require.NoError(tb, os.WriteFile(p, b, 0o644))
		paths[name] = p
		i++
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/")
		p, ok := paths[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		f, err := os.Open(p)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer f.Close()
		http.ServeContent(w, r, name, time.Time{}, f)
	}))
	tb.Cleanup(srv.Close)
	return srv
}

// raftFiles returns the real sample files by name, skipping the test when
// ../shared/data is not beside the checkout.
func raftFiles(tb testing.TB) map[string][]byte {
	tb.Helper()
	paths, err := filepath.Glob(filepath.Join(raftDir, "*"))
	require.NoError(tb, err)
	if len(paths) == 0 {
		tb.Skipf("no sample data in %s", raftDir)
	}
	out := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		require.NoError(tb, err)
		out[filepath.Base(p)] = b
	}
	return out
}
