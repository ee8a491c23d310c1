package imagetype

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Orientation is the EXIF orientation of a stored image: how its pixels must
// be turned or mirrored to be shown upright. 1 is upright; 2-8 are the
// values of the EXIF/TIFF Orientation tag (0x0112).
type Orientation int

// Orientations, named as in the EXIF specification.
const (
	Upright        Orientation = 1 // as stored
	MirrorX        Orientation = 2 // mirrored left to right
	Rotate180      Orientation = 3
	MirrorY        Orientation = 4 // mirrored top to bottom
	Transpose      Orientation = 5 // mirrored along the top-left to bottom-right diagonal
	Rotate90       Orientation = 6 // to be turned 90 degrees clockwise
	Transverse     Orientation = 7 // mirrored along the top-right to bottom-left diagonal
	Rotate270      Orientation = 8 // to be turned 90 degrees counter-clockwise
	maxOrientation             = Rotate270
)

// SwapsAxes reports whether the upright image is as wide as the stored one
// is high (orientations 5-8).
func (o Orientation) SwapsAxes() bool { return o >= Transpose && o <= maxOrientation }

// maxJPEGSegments bounds the markers scanned for EXIF before giving up; the
// APP1 segment comes right after SOI in practice.
const maxJPEGSegments = 64

// ReadOrientation returns the EXIF orientation of a JPEG (APP1 "Exif"
// segment) or TIFF (IFD0) image, Upright when there is none or it cannot be
// read, and rewinds r. It reads at most one 64 KiB segment into memory.
func ReadOrientation(r io.ReadSeeker) (Orientation, error) {
	o, err := readOrientation(r)
	if _, serr := r.Seek(0, io.SeekStart); serr != nil {
		return Upright, fmt.Errorf("rewind image: %w", serr)
	}
	if err != nil || o < Upright || o > maxOrientation {
		// A broken or absent tag is not worth failing a photo for: the
		// image is shown as stored, as most viewers do.
		return Upright, nil
	}
	return o, nil
}

var errNoExif = errors.New("no EXIF orientation")

func readOrientation(r io.ReadSeeker) (Orientation, error) {
	var head [4]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return 0, err
	}
	switch {
	case head[0] == 0xFF && head[1] == 0xD8:
		if _, err := r.Seek(2, io.SeekStart); err != nil {
			return 0, err
		}
		return jpegOrientation(bufio.NewReaderSize(r, 4096))
	case bytes.Equal(head[:], []byte("II*\x00")), bytes.Equal(head[:], []byte("MM\x00*")):
		if _, err := r.Seek(0, io.SeekStart); err != nil {
			return 0, err
		}
		return tiffOrientation(r)
	}
	return 0, errNoExif
}

// jpegOrientation walks the JPEG markers after SOI up to the first scan,
// looking for an APP1 segment that starts with "Exif\0\0".
func jpegOrientation(r *bufio.Reader) (Orientation, error) {
	for range maxJPEGSegments {
		var m [4]byte
		if _, err := io.ReadFull(r, m[:2]); err != nil {
			return 0, err
		}
		if m[0] != 0xFF {
			return 0, errors.New("jpeg: marker expected")
		}
		for m[1] == 0xFF { // fill bytes
			b, err := r.ReadByte()
			if err != nil {
				return 0, err
			}
			m[1] = b
		}
		switch {
		case m[1] == 0xDA || m[1] == 0xD9: // start of scan, end of image
			return 0, errNoExif
		case m[1] == 0x01 || m[1] >= 0xD0 && m[1] <= 0xD7: // markers without a length
			continue
		}
		if _, err := io.ReadFull(r, m[2:4]); err != nil {
			return 0, err
		}
		n := int(binary.BigEndian.Uint16(m[2:4])) - 2
		if n < 0 {
			return 0, errors.New("jpeg: bad segment length")
		}
		if m[1] != 0xE1 {
			if _, err := r.Discard(n); err != nil {
				return 0, err
			}
			continue
		}
		seg := make([]byte, n)
		if _, err := io.ReadFull(r, seg); err != nil {
			return 0, err
		}
		if tiff, ok := bytes.CutPrefix(seg, []byte("Exif\x00\x00")); ok {
			return tiffOrientation(bytes.NewReader(tiff))
		}
	}
	return 0, errNoExif
}

// maxIFDEntries bounds the entries of IFD0 that are read.
const maxIFDEntries = 1024

// tiffOrientation reads the Orientation tag (0x0112, SHORT) of IFD0 of a
// TIFF structure that starts at r's offset 0.
func tiffOrientation(r io.ReadSeeker) (Orientation, error) {
	var hdr [8]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, err
	}
	var bo binary.ByteOrder
	switch string(hdr[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 0, errors.New("tiff: bad byte order")
	}
	if bo.Uint16(hdr[2:4]) != 42 {
		return 0, errors.New("tiff: bad magic number")
	}
	if _, err := r.Seek(int64(bo.Uint32(hdr[4:8])), io.SeekStart); err != nil {
		return 0, err
	}
	var cnt [2]byte
	if _, err := io.ReadFull(r, cnt[:]); err != nil {
		return 0, err
	}
	n := min(int(bo.Uint16(cnt[:])), maxIFDEntries)
	entries := make([]byte, 12*n)
	if _, err := io.ReadFull(r, entries); err != nil {
		return 0, err
	}
	for i := 0; i < n; i++ {
		e := entries[12*i : 12*i+12]
		const tagOrientation, typeShort = 0x0112, 3
		if bo.Uint16(e[0:2]) == tagOrientation && bo.Uint16(e[2:4]) == typeShort && bo.Uint32(e[4:8]) == 1 {
			return Orientation(bo.Uint16(e[8:10])), nil
		}
	}
	return 0, errNoExif
}
