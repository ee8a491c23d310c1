// Package s3test runs a real S3 server for tests: versitygw serving a
// temporary directory on a loopback port. The binary is looked up, and
// built once with `go install` into a cache directory when it is missing.
//
// Set PHOTOPIPE_TEST_S3=skip to skip the tests that need it (for example
// offline, where it cannot be built); otherwise a missing server fails them.
package s3test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Module is the versitygw command built when no binary is found, at a fixed
// version so every machine tests against the same server.
const Module = "github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// Region is the region the server reports.
const Region = "us-east-1"

// Skipped reports whether PHOTOPIPE_TEST_S3=skip asks to skip S3 tests.
func Skipped() bool {
	return strings.EqualFold(os.Getenv("PHOTOPIPE_TEST_S3"), "skip")
}

// CacheDir is where a built versitygw is kept: $PHOTOPIPE_CACHE/bin, or
// photopipe/bin under the user's cache directory (~/.cache).
func CacheDir() (string, error) {
	if d := os.Getenv("PHOTOPIPE_CACHE"); d != "" {
		return filepath.Join(d, "bin"), nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory (set PHOTOPIPE_CACHE): %w", err)
	}
	return filepath.Join(d, "photopipe", "bin"), nil
}

// Binary returns the path of versitygw: $PHOTOPIPE_VERSITYGW, then PATH,
// the cache directory, GOBIN and GOPATH/bin; when none has it, it builds
// Module into the cache directory (about a minute, once per machine).
func Binary() (string, error) {
	if p := os.Getenv("PHOTOPIPE_VERSITYGW"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("PHOTOPIPE_VERSITYGW: %w", err)
		}
		return p, nil
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	candidates := []string{filepath.Join(cache, "versitygw")}
	if out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output(); err == nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) > 0 && strings.TrimSpace(lines[0]) != "" {
			candidates = append(candidates, filepath.Join(strings.TrimSpace(lines[0]), "versitygw"))
		}
		if len(lines) > 1 {
			for _, p := range filepath.SplitList(strings.TrimSpace(lines[1])) {
				candidates = append(candidates, filepath.Join(p, "bin", "versitygw"))
			}
		}
	}
	for _, p := range candidates {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	return build(cache)
}

// build installs Module into dir under a file lock, so test binaries that
// start at the same time build it once.
func build(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", dir, err)
	}
	bin := filepath.Join(dir, "versitygw")
	lock, err := os.OpenFile(filepath.Join(dir, ".versitygw.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("lock %s: %w", dir, err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock %s: %w", dir, err)
	}
	defer func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) }()
	if _, err := os.Stat(bin); err == nil {
		return bin, nil // built by another process while we waited
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "install", Module)
	cmd.Dir = os.TempDir() // outside any module or workspace
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOWORK=off", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("versitygw not found (PHOTOPIPE_VERSITYGW, PATH, %s, GOBIN, GOPATH/bin) and `go install %s` failed: %w\n%s"+
			"\nInstall it there, or set PHOTOPIPE_TEST_S3=skip to skip the S3 tests", dir, Module, err, out)
	}
	return bin, nil
}

// Server is a running versitygw.
type Server struct {
	// Endpoint is the server's URL, http://127.0.0.1:PORT.
	Endpoint  string
	AccessKey string
	SecretKey string
	// DataDir is the served directory: bucket b's object k is the file
	// DataDir/b/k.
	DataDir string

	root string
	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	out  bytes.Buffer
}

// Write collects the server's output (its first MiB) for error messages.
func (s *Server) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.out.Len() < 1<<20 {
		s.out.Write(p)
	}
	return len(p), nil
}

func (s *Server) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

// StartServer starts versitygw in a new temporary directory, waits until
// it answers, and returns it; Close stops it and removes the directory.
func StartServer() (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	root, err := os.MkdirTemp("", "photopipe-s3-")
	if err != nil {
		return nil, fmt.Errorf("s3 server directory: %w", err)
	}
	s := &Server{
		AccessKey: "pp" + randomHex(8),
		SecretKey: randomHex(20),
		DataDir:   filepath.Join(root, "data"),
		root:      root,
		done:      make(chan struct{}),
	}
	// Metadata in a sidecar directory, not extended attributes, so the
	// server also runs where the file system has none (tmpfs).
	meta := filepath.Join(root, "meta")
	for _, d := range []string{s.DataDir, meta} {
		if err := os.Mkdir(d, 0o755); err != nil {
			_ = os.RemoveAll(root)
			return nil, fmt.Errorf("s3 server directory: %w", err)
		}
	}
	addr, err := freeAddr()
	if err != nil {
		_ = os.RemoveAll(root)
		return nil, err
	}
	s.Endpoint = "http://" + addr
	s.cmd = exec.Command(bin, "--port", addr, "--access", s.AccessKey, "--secret", s.SecretKey,
		"--region", Region, "--quiet", "posix", "--sidecar", meta, s.DataDir)
	s.cmd.Stdout = s
	s.cmd.Stderr = s
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the tests
	if err := s.cmd.Start(); err != nil {
		_ = os.RemoveAll(root)
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	if err := s.waitReady(30 * time.Second); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// waitReady waits for any HTTP answer: unauthenticated requests get 403.
func (s *Server) waitReady(timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("versitygw exited at start:\n%s", s.output())
		default:
		}
		resp, err := client.Get(s.Endpoint + "/")
		if err == nil {
			_ = resp.Body.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("versitygw did not answer on %s within %s:\n%s", s.Endpoint, timeout, s.output())
}

// Close stops the server and removes its directory.
func (s *Server) Close() error {
	select {
	case <-s.done:
	default:
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	}
	return os.RemoveAll(s.root)
}

// Client returns a minio-go client for the server.
func (s *Server) Client() (*minio.Client, error) {
	c, err := minio.New(strings.TrimPrefix(s.Endpoint, "http://"), &minio.Options{
		Creds:        credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Region:       Region,
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 client: %w", err)
	}
	return c, nil
}

// CreateBucket creates a bucket with a new random name and returns it.
func (s *Server) CreateBucket(ctx context.Context) (string, error) {
	c, err := s.Client()
	if err != nil {
		return "", err
	}
	name := "pp-" + randomHex(6)
	if err := c.MakeBucket(ctx, name, minio.MakeBucketOptions{Region: Region}); err != nil {
		return "", fmt.Errorf("create bucket %s: %w", name, err)
	}
	return name, nil
}

// Start starts a server for the test and stops it when the test ends. It
// skips under -short or with PHOTOPIPE_TEST_S3=skip, and fails the test
// when the server cannot be found, built or started.
func Start(tb testing.TB) *Server {
	tb.Helper()
	if testing.Short() {
		tb.Skip("needs an S3 server (versitygw); skipped under -short")
	}
	if Skipped() {
		tb.Skip("S3 tests skipped: PHOTOPIPE_TEST_S3=skip")
	}
	s, err := StartServer()
	if err != nil {
		tb.Fatalf("S3 server: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Logf("stop S3 server: %v", err)
		}
	})
	return s
}

// Bucket creates a new bucket on s for the test.
func (s *Server) Bucket(tb testing.TB) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name, err := s.CreateBucket(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	return name
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	return addr, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
