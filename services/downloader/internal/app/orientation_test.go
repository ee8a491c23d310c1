package app_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/shared/event"
)

// withOrientation puts an APP1 EXIF segment with the orientation tag right
// after the JPEG's SOI marker.
func withOrientation(jpg []byte, o uint16) []byte {
	var t bytes.Buffer
	t.WriteString("MM\x00*")
	for _, v := range []any{uint32(8), uint16(1), uint16(0x0112), uint16(3), uint32(1), o, uint16(0), uint32(0)} {
		_ = binary.Write(&t, binary.BigEndian, v) // a bytes.Buffer takes every fixed-size value
	}
	payload := append([]byte("Exif\x00\x00"), t.Bytes()...)
	seg := binary.BigEndian.AppendUint16([]byte{0xFF, 0xE1}, uint16(len(payload)+2))
	out := append(append([]byte{0xFF, 0xD8}, seg...), payload...)
	return append(out, jpg[2:]...)
}

// TestHandleReportsUprightSize: the size in PhotoDownloaded is the one the
// photo is shown at, as the resizer reports it, so the recorder never
// stores the stored (sideways) size whichever event it sees last.
func TestHandleReportsUprightSize(t *testing.T) {
	t.Parallel()
	for o, want := range map[uint16][2]int{1: {30, 20}, 3: {30, 20}, 5: {20, 30}, 6: {20, 30}, 8: {20, 30}} {
		fx := newFixture(t)
		req := requested("")
		req.OriginalKey = "originals/" + photoID + "/turned.jpg"
		_, err := fx.store.Put(t.Context(), req.OriginalKey, bytes.NewReader(withOrientation(jpegBytes(t, 30, 20), o)))
		require.NoError(t, err)
		require.NoError(t, fx.d.Handle(t.Context(), req))
		got := onlyEvent[*event.PhotoDownloaded](t, fx.pub)
		require.Equal(t, want, [2]int{got.Width, got.Height}, "orientation %d", o)
	}
}
