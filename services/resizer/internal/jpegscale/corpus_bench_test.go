package jpegscale

import (
	"bytes"
	"os"
	"testing"
)

// BenchmarkDecodeSafeLanding8 decodes a 5120x2880 baseline photo of the
// make bench corpus at 1/8 (skipped without the corpus).
func BenchmarkDecodeSafeLanding8(b *testing.B) {
	data, err := os.ReadFile(os.Getenv("HOME") + "/.cache/photopipe/corpus/SafeLanding-5120x2880.jpg")
	if err != nil {
		b.Skip(err)
	}
	for b.Loop() {
		if _, err := DecodeScaled(bytes.NewReader(data), 8); err != nil {
			b.Fatal(err)
		}
	}
}
