package imagetype

import (
	"os"
	"path/filepath"
	"testing"
)

// raftDir holds real JPEGs and a PDF beside the checkout.
const raftDir = "../../../shared/data/raft"

// hostileHeads are the starts of files that lie about what they are.
var hostileHeads = [][]byte{
	nil,
	{0xFF},
	{0xFF, 0xD8},
	[]byte("\x89PNG\r\n"),
	[]byte("GIF87"),
	[]byte("RIFF\x00\x00\x00\x00WEB"),
	[]byte("RIFF\x00\x00\x00\x00WAVEfmt "),
	[]byte("BM\x00\x00"),
	[]byte("II*"),
	[]byte("%PDF"),
	[]byte("PK\x03\x04\x14\x00\x00\x00\x08\x00"),           // a ZIP renamed .png
	[]byte("<!DOCTYPE html><html><body>404</body>"),        // an error page sent as image/jpeg
	[]byte("these are not the pixels you are looking for"), // text named .jpg
	[]byte("\xef\xbb\xbf\x89PNG\r\n\x1a\n"),                // a BOM before a signature
	[]byte("<svg xmlns=\"http://www.w3.org/2000/svg\"/>"),
}

// FuzzDetect checks that Detect never panics, names a known format, and
// decides from the first SniffLen bytes alone.
func FuzzDetect(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join(raftDir, "*"))
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b[:min(len(b), 256)])
		}
	}
	for _, h := range hostileHeads {
		f.Add(h)
	}
	known := map[Format]bool{Unknown: true, JPEG: true, PNG: true, GIF: true, WebP: true, BMP: true, TIFF: true, PDF: true}
	f.Fuzz(func(t *testing.T, head []byte) {
		got := Detect(head)
		if !known[got] {
			t.Fatalf("Detect(%q) = %q, not a known format", head, got)
		}
		if short := Detect(head[:min(len(head), SniffLen)]); short != got {
			t.Fatalf("Detect(%q) = %q but %q on its first %d bytes", head, got, short, SniffLen)
		}
		if got == Unknown {
			if got.ContentType() != "application/octet-stream" || got.Extension() != "bin" {
				t.Fatalf("unknown content is named %s, .%s", got.ContentType(), got.Extension())
			}
			return
		}
		if got.ContentType() == "application/octet-stream" || got.Extension() == "bin" {
			t.Fatalf("%q has no content type or extension", got)
		}
	})
}
