// Package storage keeps originals and renditions under keys such as
// "originals/<photo>/<filename>" and "thumbnails/<photo>/thumb.jpg". Writes
// are atomic: a reader sees a whole file or none.
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrNotFound is returned for a key that holds no file.
var ErrNotFound = errors.New("not found")

// ErrInvalidKey is returned for a key that could name something outside the
// store: empty, absolute, with "..", backslashes, control characters or NUL.
var ErrInvalidKey = errors.New("invalid storage key")

// Info describes a stored file.
type Info struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// Object is an open stored file.
type Object interface {
	io.ReadSeekCloser
	Info() Info
}

// Store is where services keep files. Implementations are safe for
// concurrent use.
type Store interface {
	// Put stores everything r yields under key, atomically, replacing any
	// file there, and returns the number of bytes written.
	Put(ctx context.Context, key string, r io.Reader) (int64, error)
	// Open returns the file at key, or ErrNotFound.
	Open(ctx context.Context, key string) (Object, error)
	// Delete removes the file at key; a missing file is not an error.
	Delete(ctx context.Context, key string) error
}

// CleanKey checks that key is a relative slash-separated path that stays
// inside the store and returns it cleaned.
func CleanKey(key string) (string, error) {
	if key == "" || !utf8.ValidString(key) || strings.ContainsAny(key, "\\\x00") {
		return "", fmt.Errorf("%w: %q", ErrInvalidKey, key)
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f {
			return "", fmt.Errorf("%w: %q", ErrInvalidKey, key)
		}
	}
	if strings.HasPrefix(key, "/") {
		return "", fmt.Errorf("%w: %q is absolute", ErrInvalidKey, key)
	}
	for _, part := range strings.Split(key, "/") {
		if part == ".." {
			return "", fmt.Errorf("%w: %q leaves the store", ErrInvalidKey, key)
		}
	}
	clean := path.Clean(key)
	if clean == "." {
		return "", fmt.Errorf("%w: %q", ErrInvalidKey, key)
	}
	return clean, nil
}

// SafeFilename reduces a client-given file name to a harmless base name of
// letters, digits, '.', '-' and '_' (others become '_'), at most 100 bytes;
// fallback is used when nothing is left.
func SafeFilename(name, fallback string) string {
	if i := strings.LastIndexAny(name, "/\\"); i >= 0 {
		name = name[i+1:]
	}
	var b strings.Builder
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	out := strings.TrimLeft(b.String(), ".")
	if len(out) > 100 {
		out = out[len(out)-100:]
	}
	if strings.Trim(out, "_") == "" {
		return fallback
	}
	return out
}

// OriginalKey is where the original of a photo is kept.
func OriginalKey(photoID, filename string) string {
	return "originals/" + photoID + "/" + SafeFilename(filename, "original")
}

// IsOriginalKey reports whether key is where an original is kept.
func IsOriginalKey(key string) bool { return strings.HasPrefix(key, "originals/") }

// Prefetcher is implemented by stores that can start bringing a file into
// memory before it is read (Local, for originals of UncachedMin bytes or
// more: smaller ones stay in memory); callers check for it with a type
// assertion. Prefetch is a hint: it reports nothing, and what it cannot do
// it leaves undone.
type Prefetcher interface {
	Prefetch(ctx context.Context, key string)
}

// RenditionKey is where a rendition of a photo is kept: page 0 means the
// photo has no pages; PDF pages count from 1.
func RenditionKey(photoID, rendition string, page int, ext string) string {
	if page > 0 {
		return fmt.Sprintf("thumbnails/%s/%s-p%d.%s", photoID, rendition, page, ext)
	}
	return fmt.Sprintf("thumbnails/%s/%s.%s", photoID, rendition, ext)
}
