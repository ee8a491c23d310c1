package storage

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// hostileKeys are keys a client could send to GET /files or smuggle into a
// file name: traversal, encoded traversal, absolute paths, NUL bytes,
// backslashes, control characters and invalid UTF-8.
var hostileKeys = []string{
	"originals/0b4c7a52/a.jpg", "thumbnails/0b4c7a52/thumb-p2.png",
	"", ".", "..", "...", "../x", "a/../../x", "a/..", "./a", "a/./b/", "a//b", "a/b/",
	"/etc/passwd", "//etc/passwd", "\\etc\\passwd", "..\\..\\x", "a\\..\\..\\x",
	"%2e%2e/%2e%2e/etc/passwd", "..%2f..%2fetc%2fpasswd", "%2fetc%2fpasswd",
	"a\x00b", "a/\x00/b", "\x00", "a\nb", "a\rb", "a\tb", "a\x7fb", "\xff\xfe", "a/\xc0\xaf/b",
	"link/secret", "link/../link/secret", "file-link", "dir/../file-link", "abs/passwd",
	"C:\\Windows\\win.ini", "C:/x", "\u202e/gpj.exe", "a/\u2215../b", "．．/x",
}

// FuzzCleanKey checks that every key CleanKey accepts is a clean relative
// path inside the store, and that cleaning is stable.
func FuzzCleanKey(f *testing.F) {
	for _, k := range hostileKeys {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, key string) {
		clean, err := CleanKey(key)
		if err != nil {
			if !errors.Is(err, ErrInvalidKey) || clean != "" {
				t.Fatalf("CleanKey(%q) = %q, %v: want \"\" and ErrInvalidKey", key, clean, err)
			}
			return
		}
		if !filepath.IsLocal(clean) || !utf8.ValidString(clean) || strings.ContainsAny(clean, "\\\x00") {
			t.Fatalf("CleanKey(%q) = %q: not a local, valid path", key, clean)
		}
		for _, part := range strings.Split(clean, "/") {
			if part == "" || part == "." || part == ".." {
				t.Fatalf("CleanKey(%q) = %q: segment %q", key, clean, part)
			}
			for _, r := range part {
				if r < 0x20 || r == 0x7f {
					t.Fatalf("CleanKey(%q) = %q: control character", key, clean)
				}
			}
		}
		again, err := CleanKey(clean)
		if err != nil || again != clean {
			t.Fatalf("CleanKey(CleanKey(%q)) = %q, %v: want %q", key, again, err, clean)
		}
	})
}

// escapeFixture is a store root beside a directory it must never reach,
// with symlinks out of the root planted inside it.
type escapeFixture struct {
	root, outside string
	store         *Local
}

const secret = "TOP-SECRET: outside the storage root"

func newEscapeFixture(tb testing.TB) *escapeFixture {
	tb.Helper()
	dir := tb.TempDir()
	fx := &escapeFixture{root: filepath.Join(dir, "root"), outside: filepath.Join(dir, "outside")}
	for _, d := range []string{fx.outside, filepath.Join(fx.root, "originals", "p")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(fx.outside, "secret"), []byte(secret), 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fx.root, "originals", "p", "a.jpg"), []byte("inside"), 0o600); err != nil {
		tb.Fatal(err)
	}
	fx.plantLinks(tb)
	s, err := NewLocal(fx.root)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	fx.store = s
	return fx
}

// plantLinks (re)creates the symlinks out of the root; a Put or Delete
// may have replaced or removed them (which only touches the link itself).
func (fx *escapeFixture) plantLinks(tb testing.TB) {
	tb.Helper()
	for name, target := range map[string]string{
		"link":      fx.outside,
		"file-link": filepath.Join(fx.outside, "secret"),
		"rel-link":  "../outside",
		"abs":       "/etc",
	} {
		p := filepath.Join(fx.root, name)
		if fi, err := os.Lstat(p); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			continue
		}
		_ = os.RemoveAll(p)
		if err := os.Symlink(target, p); err != nil {
			tb.Fatal(err)
		}
	}
}

// requireOutsideUntouched checks that the directory beside the root still
// holds exactly the secret.
func (fx *escapeFixture) requireOutsideUntouched(tb testing.TB, what string) {
	tb.Helper()
	entries, err := os.ReadDir(fx.outside)
	if err != nil {
		tb.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "secret" {
		tb.Fatalf("%s changed the directory outside the root: %v", what, entries)
	}
	b, err := os.ReadFile(filepath.Join(fx.outside, "secret"))
	if err != nil || string(b) != secret {
		tb.Fatalf("%s changed the file outside the root: %q, %v", what, b, err)
	}
}

// FuzzLocalKeys opens, writes and deletes arbitrary keys in a Local store
// whose root holds symlinks to a secret outside it: nothing outside the
// root is ever read, written or removed.
func FuzzLocalKeys(f *testing.F) {
	for _, k := range hostileKeys {
		f.Add(k, []byte("x"))
	}
	fx := newEscapeFixture(f)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, key string, data []byte) {
		fx.plantLinks(t)
		if obj, err := fx.store.Open(ctx, key); err == nil {
			b, rerr := io.ReadAll(io.LimitReader(obj, 1<<20))
			_ = obj.Close()
			if rerr == nil && bytes.Contains(b, []byte("TOP-SECRET")) {
				t.Fatalf("Open(%q) read the file outside the root", key)
			}
			if !filepath.IsLocal(obj.Info().Key) {
				t.Fatalf("Open(%q) reports key %q", key, obj.Info().Key)
			}
		} else if errors.Is(err, ErrInvalidKey) {
			if _, cerr := CleanKey(key); cerr == nil {
				t.Fatalf("Open(%q) refused a key CleanKey accepts: %v", key, err)
			}
		}

		if n, err := fx.store.Put(ctx, key, bytes.NewReader(data)); err == nil {
			clean, cerr := CleanKey(key)
			if cerr != nil {
				t.Fatalf("Put(%q) stored a key CleanKey refuses", key)
			}
			// What was written is a regular file at the key, inside the root.
			p := filepath.Join(fx.root, filepath.FromSlash(clean))
			real, err := filepath.EvalSymlinks(p)
			if err != nil || !strings.HasPrefix(real, fx.root+string(filepath.Separator)) {
				t.Fatalf("Put(%q) wrote %q (%v), outside the root", key, real, err)
			}
			if b, err := os.ReadFile(p); err != nil || int64(len(b)) != n || !bytes.Equal(b, data) {
				t.Fatalf("Put(%q) stored %d bytes that do not read back: %v", key, n, err)
			}
		}
		fx.requireOutsideUntouched(t, "Put("+key+")")

		_ = fx.store.Delete(ctx, key)
		fx.requireOutsideUntouched(t, "Delete("+key+")")
	})
}
