package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
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

// brokenReader yields some bytes, then an error, as a broken download would.
type brokenReader struct{ n int }

func (f *brokenReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("connection reset")
	}
	f.n--
	return copy(p, "xxxx"), nil
}

// TestLocalPutLeavesNoTemporaryFile complements the contract tests: the
// temporary file of a failed write is removed too.
func TestLocalPutLeavesNoTemporaryFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := NewLocal(dir)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })

	_, err = s.Put(t.Context(), "k/file", &brokenReader{n: 3})
	require.Error(t, err)
	entries, err := os.ReadDir(filepath.Join(dir, "k"))
	require.NoError(t, err)
	require.Empty(t, entries, "no temporary file is left behind")
}

// Deleting a directory's last file removes the directory (an aborted
// upload left an empty originals/<id>/ behind), up to but not the top one;
// a directory with other files stays.
func TestLocalDeleteRemovesEmptyDirectories(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := NewLocal(dir)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()
	for _, k := range []string{"originals/a/x.jpg", "originals/b/x.jpg", "originals/b/y.jpg", "thumbnails/c/d/e.jpg"} {
		_, err := s.Put(ctx, k, strings.NewReader("data"))
		require.NoError(t, err)
	}
	for _, k := range []string{"originals/a/x.jpg", "originals/b/x.jpg", "thumbnails/c/d/e.jpg"} {
		require.NoError(t, s.Delete(ctx, k))
	}
	require.NoDirExists(t, filepath.Join(dir, "originals/a"))
	require.FileExists(t, filepath.Join(dir, "originals/b/y.jpg"))
	require.NoDirExists(t, filepath.Join(dir, "thumbnails/c"))
	require.DirExists(t, filepath.Join(dir, "originals"))
	require.DirExists(t, filepath.Join(dir, "thumbnails"))

	// A put into a directory that a delete is removing at the same time
	// still lands.
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(2)
		key := fmt.Sprintf("originals/r/%d.jpg", i)
		go func() {
			defer wg.Done()
			_, err := s.Put(ctx, key, strings.NewReader("data"))
			assert.NoError(t, err)
		}()
		go func() {
			defer wg.Done()
			assert.NoError(t, s.Delete(ctx, fmt.Sprintf("originals/r/%d.jpg", i-1)))
		}()
		wg.Wait()
		require.FileExists(t, filepath.Join(dir, key))
	}
}
