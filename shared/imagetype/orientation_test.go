package imagetype

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/jpeg"
	"testing"

	"github.com/stretchr/testify/require"
)

// exifSegment is an APP1 segment holding IFD0 with the given entries
// (tag, type, count, 4-byte value) in byte order bo.
func exifSegment(bo binary.ByteOrder, entries ...[4]uint32) []byte {
	var t bytes.Buffer
	if bo == binary.LittleEndian {
		t.WriteString("II")
	} else {
		t.WriteString("MM")
	}
	w := func(v any) { _ = binary.Write(&t, bo, v) }
	w(uint16(42))
	w(uint32(8))
	w(uint16(len(entries)))
	for _, e := range entries {
		w(uint16(e[0]))
		w(uint16(e[1]))
		w(e[2])
		if e[1] == 3 { // SHORT: left-justified in the value field
			w(uint16(e[3]))
			w(uint16(0))
		} else {
			w(e[3])
		}
	}
	w(uint32(0))
	payload := append([]byte("Exif\x00\x00"), t.Bytes()...)
	seg := []byte{0xFF, 0xE1, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(payload)+2))
	return append(seg, payload...)
}

func orientationEntry(o uint32) [4]uint32 { return [4]uint32{0x0112, 3, 1, o} }

// withSegments puts segments right after the SOI of a JPEG.
func withSegments(jpg []byte, segs ...[]byte) []byte {
	out := append([]byte{}, jpg[:2]...)
	for _, s := range segs {
		out = append(out, s...)
	}
	return append(out, jpg[2:]...)
}

func TestReadOrientation(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	require.NoError(t, jpeg.Encode(&buf, image.NewGray(image.Rect(0, 0, 16, 8)), nil))
	jpg := buf.Bytes()
	app0 := []byte{0xFF, 0xE0, 0x00, 0x07, 'J', 'F', 'I', 'F', 0}
	xmp := append([]byte{0xFF, 0xE1, 0x00, 0x0E}, "http://ns..."...) // an APP1 that is not EXIF
	// A little-endian TIFF whose IFD0 has a width tag but no orientation.
	tiffLE := exifSegment(binary.LittleEndian, [4]uint32{0x0100, 3, 1, 8})[4+6:]

	cases := []struct {
		name string
		data []byte
		want Orientation
	}{
		{"no exif", jpg, Upright},
		{"big-endian 6", withSegments(jpg, exifSegment(binary.BigEndian, orientationEntry(6))), Rotate90},
		{"little-endian 8", withSegments(jpg, exifSegment(binary.LittleEndian, orientationEntry(8))), Rotate270},
		{"after JFIF and XMP segments", withSegments(jpg, app0, xmp, exifSegment(binary.BigEndian, orientationEntry(3))), Rotate180},
		{"after other tags", withSegments(jpg, exifSegment(binary.LittleEndian, [4]uint32{0x010F, 2, 4, 0x21216f47}, [4]uint32{0x0110, 2, 4, 0}, orientationEntry(5))), Transpose},
		{"out of range value", withSegments(jpg, exifSegment(binary.BigEndian, orientationEntry(9))), Upright},
		{"zero value", withSegments(jpg, exifSegment(binary.BigEndian, orientationEntry(0))), Upright},
		{"wrong type", withSegments(jpg, exifSegment(binary.BigEndian, [4]uint32{0x0112, 4, 1, 6})), Upright},
		{"truncated segment", withSegments(jpg, exifSegment(binary.BigEndian, orientationEntry(6))[:20]), Upright},
		{"tiff without the tag", tiffLE, Upright},
		{"png", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR"), Upright},
		{"empty", nil, Upright},
	}
	for o := Upright; o <= Rotate270; o++ {
		cases = append(cases, struct {
			name string
			data []byte
			want Orientation
		}{"value " + string(rune('0'+o)), withSegments(jpg, exifSegment(binary.LittleEndian, orientationEntry(uint32(o)))), o})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := bytes.NewReader(tc.data)
			got, err := ReadOrientation(r)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			pos, _ := r.Seek(0, 1)
			require.Zero(t, pos, "rewound")
			if len(tc.data) > 0 && tc.data[0] == 0xFF {
				cfg, err := jpeg.DecodeConfig(r)
				require.NoError(t, err, "still decodes")
				require.Equal(t, 16, cfg.Width)
			}
		})
	}
}

func TestReadOrientationTIFF(t *testing.T) {
	t.Parallel()
	// A TIFF whose IFD0 carries the tag: a big-endian header and one IFD.
	seg := exifSegment(binary.BigEndian, orientationEntry(7))
	data := seg[4+6:] // the TIFF structure inside the APP1 payload
	got, err := ReadOrientation(bytes.NewReader(data))
	require.NoError(t, err)
	require.Equal(t, Transverse, got)
}
