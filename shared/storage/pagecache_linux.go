package storage

import (
	"os"

	"golang.org/x/sys/unix"
)

// The page-cache hints of Local (see Local.CacheOriginals). They are hints:
// a kernel that ignores one changes only what stays in memory, never what
// is read or written, so their errors are ignored.

// dropCached asks the kernel to drop f's clean pages from the page cache.
func dropCached(f *os.File) { _ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED) }

// readSequentially tells the kernel f will be read from start to end, so
// that it reads further ahead.
func readSequentially(f *os.File) { _ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_SEQUENTIAL) }

// readAhead starts reading all of f into the page cache in the background.
func readAhead(f *os.File) { _ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_WILLNEED) }
