package pdfium

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/tetratelabs/wazero"
)

// NewCache returns a compilation cache that keeps PDFium's compiled code in
// dir (created if needed), so that later processes start the runtime in
// milliseconds instead of seconds. The directory must be writable by the
// service only: its files are executable code.
func NewCache(dir string) (wazero.CompilationCache, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pdf cache directory: %w", err)
	}
	c, err := wazero.NewCompilationCacheWithDir(dir)
	if err != nil {
		return nil, fmt.Errorf("pdf cache directory: %w", err)
	}
	return c, nil
}

// TestCache is the cache tests share, in the temporary directory: PDFium is
// compiled once per machine rather than once per test package (a minute
// under the race detector). It falls back to an in-memory cache. Tests must
// not Close a Renderer that uses it while others still do.
func TestCache() wazero.CompilationCache {
	c, err := NewCache(filepath.Join(os.TempDir(), "photopipe-test-pdfium-cache"))
	if err != nil {
		return wazero.NewCompilationCache()
	}
	return c
}
