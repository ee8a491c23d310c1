package storage

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCleanKey(t *testing.T) {
	t.Parallel()
	cases := []struct {
		key, want string
		ok        bool
	}{
		{"thumbnails/p/thumb.jpg", "thumbnails/p/thumb.jpg", true},
		{"a//b/./c.jpg", "a/b/c.jpg", true},
		{"", "", false},
		{"/etc/passwd", "", false},
		{"../x", "", false},
		{"a/../../x", "", false},
		{"a/..", "", false},
		{"a\\..\\x", "", false},
		{"a\x00b", "", false},
		{"a\nb", "", false},
		{".", "", false},
		{"\xff", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.key, func(t *testing.T) {
			t.Parallel()
			got, err := CleanKey(tc.key)
			if !tc.ok {
				require.ErrorIs(t, err, ErrInvalidKey)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestSafeFilename(t *testing.T) {
	t.Parallel()
	require.Equal(t, "a_b.jpg", SafeFilename("dir/a b.jpg", "x"))
	require.Equal(t, "passwd", SafeFilename("../../etc/passwd", "x"))
	require.Equal(t, "x", SafeFilename("..", "x"))
	require.Equal(t, "x", SafeFilename("", "x"))
	require.Equal(t, "evil.png", SafeFilename("C:\\evil.png", "x"))
	require.Len(t, SafeFilename(strings.Repeat("a", 300)+".jpg", "x"), 100)
}

func TestKeys(t *testing.T) {
	t.Parallel()
	require.Equal(t, "originals/p1/cat.jpg", OriginalKey("p1", "cat.jpg"))
	require.Equal(t, "originals/p1/original", OriginalKey("p1", "/"))
	require.Equal(t, "thumbnails/p1/thumb.jpg", RenditionKey("p1", "thumb", 0, "jpg"))
	require.Equal(t, "thumbnails/p1/preview-p3.png", RenditionKey("p1", "preview", 3, "png"))
}

func TestLocalPutOpenDelete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	s, err := NewLocal(dir)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })

	n, err := s.Put(ctx, "a/b/c.txt", strings.NewReader("hello"))
	require.NoError(t, err)
	require.EqualValues(t, 5, n)
	obj, err := s.Open(ctx, "a/b/c.txt")
	require.NoError(t, err)
	b, err := io.ReadAll(obj)
	require.NoError(t, err)
	require.NoError(t, obj.Close())
	require.Equal(t, "hello", string(b))
	require.EqualValues(t, 5, obj.Info().Size)

	_, err = s.Open(ctx, "a/missing")
	require.ErrorIs(t, err, ErrNotFound)
	_, err = s.Open(ctx, "a/b")
	require.ErrorIs(t, err, ErrNotFound, "a directory is not a file")
	require.NoError(t, s.Delete(ctx, "a/b/c.txt"))
	require.NoError(t, s.Delete(ctx, "a/b/c.txt"))
	_, err = s.Open(ctx, "a/b/c.txt")
	require.ErrorIs(t, err, ErrNotFound)
}

func TestLocalRefusesEscapes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	outside := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o600))
	dir := t.TempDir()
	require.NoError(t, os.Symlink(outside, filepath.Join(dir, "link")))
	s, err := NewLocal(dir)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })

	_, err = s.Open(ctx, "link/secret")
	require.Error(t, err, "a symlink out of the root must not be followed")
	_, err = s.Put(ctx, "link/new", strings.NewReader("x"))
	require.Error(t, err)
	_, err = os.Stat(filepath.Join(outside, "new"))
	require.True(t, errors.Is(err, os.ErrNotExist))
	_, err = s.Open(ctx, "../secret")
	require.ErrorIs(t, err, ErrInvalidKey)
}

// failingReader yields some bytes, then an error, as a broken download would.
type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("connection reset")
	}
	f.n--
	return copy(p, "xxxx"), nil
}

func TestLocalPutIsAtomic(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	s, err := NewLocal(dir)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })

	_, err = s.Put(ctx, "k/file", &failingReader{n: 3})
	require.Error(t, err)
	_, err = s.Open(ctx, "k/file")
	require.ErrorIs(t, err, ErrNotFound, "a failed write leaves nothing under the key")
	entries, err := os.ReadDir(filepath.Join(dir, "k"))
	require.NoError(t, err)
	require.Empty(t, entries, "no temporary file is left behind")

	// Concurrent writers of the same key: the reader always sees one whole value.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Put(ctx, "k/same", bytes.NewReader(bytes.Repeat([]byte{byte('a' + i)}, 1<<16)))
			require.NoError(t, err)
		}()
	}
	wg.Wait()
	obj, err := s.Open(ctx, "k/same")
	require.NoError(t, err)
	b, err := io.ReadAll(obj)
	require.NoError(t, err)
	require.NoError(t, obj.Close())
	require.Len(t, b, 1<<16)
	require.Equal(t, bytes.Repeat(b[:1], 1<<16), b)
}
