package jpegscale

import (
	"bytes"
	"os"
	"testing"
)

// TestProgressiveMatchesSequential decodes progressive JPEGs and their
// sequential twins, which hold the same coefficients (jpegtran converted
// them losslessly), at every scale: the pixels must be the same. The
// progressive decoder keeps its coefficients between scans in its own way
// (compact blocks at a reduced size, non-zero masks for the refinement
// scans); the sequential one decodes each block at once, so any
// coefficient the progressive path gets wrong shows.
//
// bands-progressive.jpg has the scan script of testdata/bands-scans.txt
// (jpegtran -scans bands-scans.txt -restart 7): spectral bands that start
// and end inside the coefficients a reduced size keeps, three successive
// approximation steps, split refinement bands, restart intervals and
// partial MCUs (360x240, 4:2:0). ycc422, ycc444 and cmyk have libjpeg's
// default script (jpegtran -progressive -restart 3) with 4:2:2 and 4:4:4
// sampling and four components (Adobe CMYK), at odd sizes. dcsplit has the
// script of testdata/dcsplit-scans.txt (jpegtran -scans dcsplit-scans.txt
// -restart 5B): DC scans of one component and refined, restarts every 5
// blocks or MCUs (not at row ends), 100x70 in 4:2:0, so that a scan of the
// luma alone has blocks past the right and bottom edges that are not coded.
// The others are the decoder's progressive fixtures, colour and grayscale.
func TestProgressiveMatchesSequential(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"bands", "ycc422", "ycc444", "cmyk", "dcsplit", "progressive-photo", "progressive-restart-gray"} {
		prog := readFixture(t, name+"-progressive.jpg", name+".jpg")
		seq := readFixture(t, name+"-baseline.jpg")
		if !bytes.Contains(prog, []byte{0xff, 0xc2}) || bytes.Contains(seq, []byte{0xff, 0xc2}) {
			t.Fatalf("%s: the fixtures are not a progressive JPEG and a sequential one", name)
		}
		for _, s := range []int{1, 2, 4, 8} {
			want, err := DecodeScaled(bytes.NewReader(seq), s)
			if err != nil {
				t.Fatalf("%s 1/%d sequential: %v", name, s, err)
			}
			got, err := DecodeScaled(bytes.NewReader(prog), s)
			if err != nil {
				t.Fatalf("%s 1/%d progressive: %v", name, s, err)
			}
			if !sameImage(got, want) {
				t.Errorf("%s 1/%d: the progressive decode differs from the sequential one", name, s)
			}
		}
	}
}

// readFixture reads the first of names that testdata has.
func readFixture(t *testing.T, names ...string) []byte {
	t.Helper()
	for _, n := range names {
		if data, err := os.ReadFile("testdata/" + n); err == nil {
			return data
		}
	}
	t.Fatalf("testdata has none of %v", names)
	return nil
}
