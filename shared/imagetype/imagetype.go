// Package imagetype recognises the formats photopipe accepts from their
// first bytes, never from a file name or a Content-Type header.
package imagetype

import "bytes"

// Format is a recognised file format.
type Format string

// Formats photopipe knows.
const (
	Unknown Format = ""
	JPEG    Format = "jpeg"
	PNG     Format = "png"
	GIF     Format = "gif"
	WebP    Format = "webp"
	BMP     Format = "bmp"
	TIFF    Format = "tiff"
	PDF     Format = "pdf"
)

// SniffLen is how many leading bytes Detect needs at most.
const SniffLen = 16

// Detect returns the format of a file from its first bytes.
func Detect(head []byte) Format {
	switch {
	case bytes.HasPrefix(head, []byte{0xFF, 0xD8, 0xFF}):
		return JPEG
	case bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n")):
		return PNG
	case bytes.HasPrefix(head, []byte("GIF87a")), bytes.HasPrefix(head, []byte("GIF89a")):
		return GIF
	case len(head) >= 12 && bytes.Equal(head[:4], []byte("RIFF")) && bytes.Equal(head[8:12], []byte("WEBP")):
		return WebP
	case len(head) >= 14 && bytes.HasPrefix(head, []byte("BM")):
		return BMP
	case bytes.HasPrefix(head, []byte("II*\x00")), bytes.HasPrefix(head, []byte("MM\x00*")):
		return TIFF
	case bytes.HasPrefix(head, []byte("%PDF-")):
		return PDF
	}
	return Unknown
}

// ContentType returns the MIME type of f.
func (f Format) ContentType() string {
	switch f {
	case JPEG:
		return "image/jpeg"
	case PNG:
		return "image/png"
	case GIF:
		return "image/gif"
	case WebP:
		return "image/webp"
	case BMP:
		return "image/bmp"
	case TIFF:
		return "image/tiff"
	case PDF:
		return "application/pdf"
	}
	return "application/octet-stream"
}

// Extension returns the usual file extension of f, without a dot.
func (f Format) Extension() string {
	switch f {
	case JPEG:
		return "jpg"
	case Unknown:
		return "bin"
	}
	return string(f)
}
