package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"
	"syscall"
)

// Local is a Store in a directory. All access goes through os.Root, so no
// key, symlink or ".." can reach outside the directory.
//
// Originals of UncachedMin bytes or more are not kept in the page cache
// unless CacheOriginals is set: Put drops an original's pages once they
// are on disk, and closing an opened original drops what was read. An
// original is written once and read once soon after (the resizer;
// Prefetch brings it back in while the resizer waits for a rendering
// slot), so caching it would only push out what is read often
// (renditions, the database's files), and a burst of large downloads
// would fill memory with them. On the development VM (where memory the
// kernel has not used yet is expensive to touch) this cut the
// downloader's CPU per 18 MP photo from about 20 to 8-11 ms; the
// resizer's read from disk takes some of that back in some runs.
type Local struct {
	root *os.Root
	// CacheOriginals leaves originals in the page cache like any other
	// file (STORAGE_CACHE_ORIGINALS). Set it before the first call.
	CacheOriginals bool
}

var _ Prefetcher = (*Local)(nil)

// UncachedMin is the size from which Local keeps an original out of the
// page cache. A smaller one holds little memory, and the system calls
// that would drop it and read it back ahead cost more than they save.
const UncachedMin = 1 << 20

var _ Store = (*Local)(nil)

// NewLocal opens (creating it if needed) the directory dir as a store.
func NewLocal(dir string) (*Local, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create storage directory: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open storage directory: %w", err)
	}
	return &Local{root: root}, nil
}

// Close releases the directory.
func (l *Local) Close() error { return l.root.Close() }

// Put writes r to a temporary file beside key and renames it into place, so
// a crash never leaves a partial file under key.
func (l *Local) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	bp := chunks.Get().(*[]byte)
	defer chunks.Put(bp)
	return l.put(ctx, key, r, *bp)
}

// put is Put copying through buf.
func (l *Local) put(ctx context.Context, key string, r io.Reader, buf []byte) (int64, error) {
	key, err := CleanKey(key)
	if err != nil {
		return 0, err
	}
	var suffix [8]byte
	_, _ = rand.Read(suffix[:])
	tmp := path.Join(path.Dir(key), ".tmp-"+hex.EncodeToString(suffix[:])+"-"+path.Base(key))
	var f *os.File
	for try := 0; ; try++ {
		if err = l.mkdirs(path.Dir(key)); err == nil {
			f, err = l.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		}
		// A Delete of the directory's last file may remove it meanwhile
		// (MkdirAll then finds it gone after it existed).
		if err == nil || try == 2 || !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	if err != nil {
		return 0, fmt.Errorf("put %s: %w", key, err)
	}
	n, err := copyChunked(f, ctxReader{ctx, r}, buf)
	if err == nil {
		err = syncFile(f)
	}
	if err == nil && l.dropsCache(key, n) {
		dropCached(f) // clean now that it is synced
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = l.root.Rename(tmp, key)
	}
	if err != nil {
		_ = l.root.Remove(tmp)
		return 0, fmt.Errorf("put %s: %w", key, err)
	}
	// The new name is on disk once its directory is: before that, a crash
	// of the machine could leave the file nameless.
	if err := l.syncDir(path.Dir(key)); err != nil {
		return 0, fmt.Errorf("put %s: %w", key, err)
	}
	return n, nil
}

// syncFile flushes f to disk (tests watch it).
var syncFile = (*os.File).Sync

// mkdirs makes the directory dir and its missing parents, each synced into
// its parent so that it survives a crash of the machine.
func (l *Local) mkdirs(dir string) error {
	if dir == "." {
		return nil
	}
	err := l.root.Mkdir(dir, 0o755)
	if errors.Is(err, fs.ErrNotExist) {
		if err := l.mkdirs(path.Dir(dir)); err != nil {
			return err
		}
		err = l.root.Mkdir(dir, 0o755)
	}
	if errors.Is(err, fs.ErrExist) {
		return nil // a file in its place fails the file's creation
	}
	if err != nil {
		return err
	}
	return l.syncDir(path.Dir(dir))
}

// syncDir flushes the directory dir (its entries) to disk.
func (l *Local) syncDir(dir string) error {
	d, err := l.root.Open(dir)
	if err != nil {
		return err
	}
	err = syncFile(d)
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP) {
		err = nil // a file system that cannot sync directories (some FUSE and network ones)
	}
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// Open returns the file at key.
func (l *Local) Open(_ context.Context, key string) (Object, error) {
	key, err := CleanKey(key)
	if err != nil {
		return nil, err
	}
	f, err := l.root.Open(key)
	if err != nil {
		// A key that passed CleanKey can still meet a symlink that leaves
		// the root (os.Root refuses it) or a non-directory on its way: to
		// the client, either is simply not there.
		var pe *fs.PathError
		if errors.Is(err, fs.ErrNotExist) || errors.As(err, &pe) && !errors.Is(err, fs.ErrPermission) {
			return nil, fmt.Errorf("open %s: %w", key, ErrNotFound)
		}
		return nil, fmt.Errorf("open %s: %w", key, err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("open %s: %w", key, err)
	}
	if !st.Mode().IsRegular() {
		_ = f.Close()
		return nil, fmt.Errorf("open %s: %w", key, ErrNotFound)
	}
	drop := l.dropsCache(key, st.Size())
	if drop {
		readSequentially(f)
	}
	return localObject{File: f, info: Info{Key: key, Size: st.Size(), ModTime: st.ModTime()}, drop: drop}, nil
}

// Prefetch starts reading the file at key into memory in the background,
// for a caller that is about to read all of it. A key that names no file
// is not an error here (Open reports it).
func (l *Local) Prefetch(_ context.Context, key string) {
	key, err := CleanKey(key)
	if err != nil {
		return
	}
	f, err := l.root.Open(key)
	if err != nil {
		return
	}
	readAhead(f)
	_ = f.Close()
}

// dropsCache reports whether the file at key, of size bytes, is kept out
// of the page cache.
func (l *Local) dropsCache(key string, size int64) bool {
	return !l.CacheOriginals && size >= UncachedMin && IsOriginalKey(key)
}

// Delete removes the file at key.
func (l *Local) Delete(_ context.Context, key string) error {
	key, err := CleanKey(key)
	if err != nil {
		return err
	}
	if err := l.root.Remove(key); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	// Its directories too, once empty (an aborted upload's
	// originals/<id>/), but not the top one (originals/): removing a
	// directory that is not empty fails and stops here.
	for dir := path.Dir(key); strings.Contains(dir, "/"); dir = path.Dir(dir) {
		if l.root.Remove(dir) != nil {
			break
		}
	}
	return nil
}

type localObject struct {
	*os.File
	info Info
	drop bool // drop the file's pages from the page cache when closed
}

func (o localObject) Info() Info { return o.info }

func (o localObject) Close() error {
	if o.drop {
		dropCached(o.File)
	}
	return o.File.Close()
}

// chunkSize is how much Put reads before each write. Fewer, larger
// writes cost the kernel less per byte than io.Copy's 32 KiB ones (fewer
// system calls; the page cache keeps the file in larger folios). Storing
// a 6.8 MB file from 64 KiB reads (BenchmarkLocalPutLarge, three
// interleaved rounds on the shared 2-CPU VM) took 7.4 cpu-ms in 32 KiB
// writes, 5.8 in 128 KiB, 6.0 in 256 KiB and 5.1 in 1 MiB. Through HTTP
// (the downloader's BenchmarkHandleLarge) the first interleaved runs gave
// 8.1 for 256 KiB against io.Copy's 10.1 and 16 to 22 for 1 MiB, a buffer
// that no longer stays in the L2 cache between the read that fills it
// and the write that empties it; later runs on the loaded machine did not
// separate them. In BenchmarkEndToEndLarge the downloader took 9.0
// cpu-ms per 18 MP photo against 10.0 (means of 7 and 4 runs). 256 KiB
// per concurrent Put is also little memory.
const chunkSize = 256 << 10

// chunks are Put's buffers, shared by its concurrent calls.
var chunks = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

// copyChunked copies r to w in writes of len(buf) (the last one shorter),
// filling buf from however many reads r needs. Only io.EOF ends the
// copy well: any other error, io.ErrUnexpectedEOF of a cut-off body
// included, is returned.
func copyChunked(w io.Writer, r io.Reader, buf []byte) (int64, error) {
	var total int64
	for {
		n, err := fill(r, buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return total, werr
			}
			total += int64(n)
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// fill reads from r until buf is full or r fails; it returns io.EOF (and
// what it read) when r ends first.
func fill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// ctxReader stops a copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
