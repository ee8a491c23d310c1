package jpegscale

import (
	"bytes"
	"fmt"
	"os"
	"testing"
)

// corpusPhoto reads a photo of the make bench corpus, or skips b.
func corpusPhoto(b *testing.B, name string) []byte {
	data, err := os.ReadFile(os.Getenv("HOME") + "/.cache/photopipe/corpus/" + name)
	if err != nil {
		b.Skip(err)
	}
	return data
}

// BenchmarkDecodeSafeLanding8 decodes a 5120x2880 baseline photo of the
// make bench corpus at 1/8 (skipped without the corpus).
func BenchmarkDecodeSafeLanding8(b *testing.B) {
	data := corpusPhoto(b, "SafeLanding-5120x2880.jpg")
	for b.Loop() {
		if _, err := DecodeScaled(bytes.NewReader(data), 8); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeProgressive decodes two progressive photos of the corpus
// (2560x1600 and 5120x2880, libjpeg's scan script with its refinement
// scans) at full size, 1/2, 1/4 and 1/8 (DC scans only).
func BenchmarkDecodeProgressive(b *testing.B) {
	for _, name := range []string{"Autumn-2560x1600.jpg", "Flow-5120x2880.jpg"} {
		for _, s := range []int{1, 2, 4, 8} {
			b.Run(fmt.Sprintf("%s/1:%d", name, s), func(b *testing.B) {
				data := corpusPhoto(b, name)
				for b.Loop() {
					if _, err := DecodeScaled(bytes.NewReader(data), s); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
