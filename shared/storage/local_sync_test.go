package storage

import (
	"context"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// A stored file survives a crash of the machine, not only of its writer:
// the file is synced before its rename, its directory after it (the new
// name), and each directory Put makes is synced into its parent.
func TestLocalPutSyncsDirectories(t *testing.T) {
	dir := t.TempDir()
	l, err := NewLocal(dir)
	require.NoError(t, err)
	defer l.Close()
	var mu sync.Mutex
	var synced []string
	orig := syncFile
	syncFile = func(f *os.File) error {
		mu.Lock()
		name := strings.TrimPrefix(f.Name(), dir) // the path from the root
		if strings.Contains(name, ".tmp-") {
			name = "tmp"
		}
		synced = append(synced, name)
		mu.Unlock()
		return orig(f)
	}
	t.Cleanup(func() { syncFile = orig })

	_, err = l.Put(context.Background(), "originals/p1/a.jpg", strings.NewReader("x"))
	require.NoError(t, err)
	require.Equal(t, []string{"/.", "/originals", "tmp", "/originals/p1"}, synced,
		"originals made in the root, p1 in originals, the file, then its name")

	synced = nil
	_, err = l.Put(context.Background(), "originals/p1/b.jpg", strings.NewReader("y"))
	require.NoError(t, err)
	require.Equal(t, []string{"tmp", "/originals/p1"}, synced, "no directory made")

	// A file system that cannot sync a directory is not an error.
	syncFile = func(f *os.File) error {
		if st, err := f.Stat(); err == nil && st.IsDir() {
			return &os.PathError{Op: "sync", Path: f.Name(), Err: syscall.EINVAL}
		}
		return orig(f)
	}
	_, err = l.Put(context.Background(), "thumbnails/p1/thumb.jpg", strings.NewReader("z"))
	require.NoError(t, err)
}
