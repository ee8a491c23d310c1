package storage

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// residentPages counts the pages of the file at path that are in the page
// cache (mincore on a mapping of it; mapping does not read anything in).
func residentPages(tb testing.TB, path string) int {
	tb.Helper()
	f, err := os.Open(path)
	require.NoError(tb, err)
	defer f.Close()
	st, err := f.Stat()
	require.NoError(tb, err)
	m, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	require.NoError(tb, err)
	defer func() { require.NoError(tb, unix.Munmap(m)) }()
	pages := (len(m) + os.Getpagesize() - 1) / os.Getpagesize()
	vec := make([]byte, pages)
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		tb.Fatalf("mincore: %v", errno)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

// pageCacheStore returns a Local in a directory whose files can leave the
// page cache (not tmpfs, where the page cache is the only copy).
func pageCacheStore(t *testing.T) (*Local, string) {
	t.Helper()
	dir := t.TempDir()
	var fs unix.Statfs_t
	require.NoError(t, unix.Statfs(dir, &fs))
	if fs.Type == unix.TMPFS_MAGIC {
		t.Skip("the test directory is on tmpfs, whose files cannot leave the page cache; set TMPDIR to a disk")
	}
	l, err := NewLocal(dir)
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	return l, dir
}

const pageCacheTestSize = UncachedMin + 1000 // 257 pages of 4 KiB

func TestLocalKeepsOriginalsOutOfThePageCache(t *testing.T) {
	t.Parallel()
	l, dir := pageCacheStore(t)
	data := bytes.Repeat([]byte("photopipe"), pageCacheTestSize/9+1)
	pages := (len(data) + os.Getpagesize() - 1) / os.Getpagesize()
	ctx := t.Context()

	orig := OriginalKey("p1", "big.jpg")
	_, err := l.Put(ctx, orig, bytes.NewReader(data))
	require.NoError(t, err)
	require.Zero(t, residentPages(t, filepath.Join(dir, orig)), "an original stays cached after Put")

	thumb := RenditionKey("p1", "thumb", 0, "jpg")
	_, err = l.Put(ctx, thumb, bytes.NewReader(data))
	require.NoError(t, err)
	require.Equal(t, pages, residentPages(t, filepath.Join(dir, thumb)), "a rendition is dropped from the cache")

	// Reading an original brings it in; closing it drops it again.
	obj, err := l.Open(ctx, orig)
	require.NoError(t, err)
	got, err := io.ReadAll(obj)
	require.NoError(t, err)
	require.Equal(t, data, got)
	require.Positive(t, residentPages(t, filepath.Join(dir, orig)))
	require.NoError(t, obj.Close())
	require.Zero(t, residentPages(t, filepath.Join(dir, orig)), "a read original stays cached after Close")

	// Prefetch reads it in ahead of the reader, in the background.
	l.Prefetch(ctx, orig)
	require.Eventually(t, func() bool { return residentPages(t, filepath.Join(dir, orig)) == pages },
		5*time.Second, 10*time.Millisecond, "Prefetch did not bring the original into the cache")

	// A small original stays cached: dropping it would save little.
	small := OriginalKey("p3", "small.jpg")
	_, err = l.Put(ctx, small, bytes.NewReader(data[:UncachedMin-1]))
	require.NoError(t, err)
	require.Equal(t, UncachedMin/os.Getpagesize(), residentPages(t, filepath.Join(dir, small)))

	// Prefetch of what is not there, or may not be named, does nothing.
	l.Prefetch(ctx, OriginalKey("p2", "missing.jpg"))
	l.Prefetch(ctx, "../outside")
}

func TestLocalCacheOriginals(t *testing.T) {
	t.Parallel()
	l, dir := pageCacheStore(t)
	l.CacheOriginals = true
	data := bytes.Repeat([]byte{7}, pageCacheTestSize)
	orig := OriginalKey("p1", "big.jpg")
	_, err := l.Put(t.Context(), orig, bytes.NewReader(data))
	require.NoError(t, err)
	obj, err := l.Open(t.Context(), orig)
	require.NoError(t, err)
	_, err = io.Copy(io.Discard, obj)
	require.NoError(t, err)
	require.NoError(t, obj.Close())
	require.Equal(t, (pageCacheTestSize+os.Getpagesize()-1)/os.Getpagesize(), residentPages(t, filepath.Join(dir, orig)))
}
