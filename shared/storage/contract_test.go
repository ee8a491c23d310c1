package storage_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/shared/storage"
	"github.com/photopipe/photopipe/shared/storage/s3test"
)

// One versitygw for the whole package, started by the first test that
// needs it and stopped by TestMain.
var (
	s3Once   sync.Once
	s3Server *s3test.Server
	s3Err    error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if s3Server != nil {
		_ = s3Server.Close()
	}
	os.Exit(code)
}

// s3Config returns the settings of a new, empty bucket on the shared
// server, skipping under -short or PHOTOPIPE_TEST_S3=skip.
func s3Config(tb testing.TB) storage.S3Config {
	tb.Helper()
	if testing.Short() {
		tb.Skip("needs an S3 server (versitygw); skipped under -short")
	}
	if s3test.Skipped() {
		tb.Skip("S3 tests skipped: PHOTOPIPE_TEST_S3=skip")
	}
	s3Once.Do(func() { s3Server, s3Err = s3test.StartServer() })
	if s3Err != nil {
		tb.Fatalf("S3 server: %v", s3Err)
	}
	return storage.S3Config{
		Endpoint:        s3Server.Endpoint,
		Region:          s3test.Region,
		Bucket:          s3Server.Bucket(tb),
		AccessKeyID:     s3Server.AccessKey,
		SecretAccessKey: s3Server.SecretKey,
		PathStyle:       storage.PathStyleOn,
		ConnectTimeout:  10 * time.Second,
	}
}

// backends opens a new, empty store of every implementation.
var backends = []struct {
	name string
	open func(tb testing.TB) storage.Backend
}{
	{"local", func(tb testing.TB) storage.Backend {
		s, err := storage.Open(tb.Context(), storage.Config{Backend: storage.BackendLocal, Dir: tb.TempDir()})
		require.NoError(tb, err)
		return s
	}},
	{"s3", func(tb testing.TB) storage.Backend {
		s, err := storage.Open(tb.Context(), storage.Config{Backend: storage.BackendS3, S3: s3Config(tb)})
		require.NoError(tb, err)
		return s
	}},
}

// TestStoreContract runs the same behaviour checks over every backend: the
// services must not be able to tell them apart.
func TestStoreContract(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		run  func(t *testing.T, s storage.Store)
	}{
		{"put then open returns the bytes and their size", contractRoundTrip},
		{"put replaces the whole value", contractOverwrite},
		{"missing keys and prefixes are not found", contractNotFound},
		{"delete removes and tolerates a missing key", contractDelete},
		{"keys that leave the store are refused", contractInvalidKeys},
		{"an empty file is a file", contractEmpty},
		{"a failed write leaves nothing", contractFailedWrite},
		{"a large file round-trips and a failed overwrite keeps the old one", contractLarge},
		{"concurrent writers leave one whole value", contractConcurrent},
		{"objects seek like files", contractSeek},
		{"a cancelled context stops a put", contractCancelled},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					s := b.open(t)
					t.Cleanup(func() { require.NoError(t, s.Close()) })
					tc.run(t, s)
				})
			}
		})
	}
}

func read(t *testing.T, s storage.Store, key string) ([]byte, storage.Info) {
	t.Helper()
	obj, err := s.Open(t.Context(), key)
	require.NoError(t, err)
	defer obj.Close()
	b, err := io.ReadAll(obj)
	require.NoError(t, err)
	return b, obj.Info()
}

func contractRoundTrip(t *testing.T, s storage.Store) {
	before := time.Now().Add(-2 * time.Second) // S3 keeps whole seconds
	n, err := s.Put(t.Context(), "originals/p1/cat.jpg", strings.NewReader("hello"))
	require.NoError(t, err)
	require.EqualValues(t, 5, n)
	b, info := read(t, s, "originals/p1/cat.jpg")
	require.Equal(t, "hello", string(b))
	require.Equal(t, storage.Info{Key: "originals/p1/cat.jpg", Size: 5, ModTime: info.ModTime}, info)
	require.True(t, info.ModTime.After(before) && info.ModTime.Before(time.Now().Add(2*time.Second)),
		"modification time %s is now", info.ModTime)

	// Keys are cleaned the same way on the way in and out.
	_, err = s.Put(t.Context(), "a//b/./c.txt", strings.NewReader("x"))
	require.NoError(t, err)
	b, info = read(t, s, "a/b/c.txt")
	require.Equal(t, "x", string(b))
	require.Equal(t, "a/b/c.txt", info.Key)
}

func contractOverwrite(t *testing.T, s storage.Store) {
	_, err := s.Put(t.Context(), "k", strings.NewReader("a longer first value"))
	require.NoError(t, err)
	_, err = s.Put(t.Context(), "k", strings.NewReader("short"))
	require.NoError(t, err)
	b, info := read(t, s, "k")
	require.Equal(t, "short", string(b))
	require.EqualValues(t, 5, info.Size)
}

func contractNotFound(t *testing.T, s storage.Store) {
	_, err := s.Put(t.Context(), "dir/sub/file", strings.NewReader("x"))
	require.NoError(t, err)
	for _, key := range []string{"missing", "dir/missing", "dir/sub", "dir"} {
		_, err := s.Open(t.Context(), key)
		require.ErrorIs(t, err, storage.ErrNotFound, key)
	}
}

func contractDelete(t *testing.T, s storage.Store) {
	_, err := s.Put(t.Context(), "a/b", strings.NewReader("x"))
	require.NoError(t, err)
	require.NoError(t, s.Delete(t.Context(), "a/b"))
	_, err = s.Open(t.Context(), "a/b")
	require.ErrorIs(t, err, storage.ErrNotFound)
	require.NoError(t, s.Delete(t.Context(), "a/b"), "deleting a missing key is not an error")
}

func contractInvalidKeys(t *testing.T, s storage.Store) {
	for _, key := range []string{"", "/etc/passwd", "../x", "a/../../x", "a\\b", "a\x00b"} {
		_, err := s.Put(t.Context(), key, strings.NewReader("x"))
		require.ErrorIs(t, err, storage.ErrInvalidKey, "put %q", key)
		_, err = s.Open(t.Context(), key)
		require.ErrorIs(t, err, storage.ErrInvalidKey, "open %q", key)
		require.ErrorIs(t, s.Delete(t.Context(), key), storage.ErrInvalidKey, "delete %q", key)
	}
}

func contractEmpty(t *testing.T, s storage.Store) {
	n, err := s.Put(t.Context(), "empty", strings.NewReader(""))
	require.NoError(t, err)
	require.Zero(t, n)
	b, info := read(t, s, "empty")
	require.Empty(t, b)
	require.Zero(t, info.Size)
}

// failingReader yields n bytes of data, then fails as a broken download does.
type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("connection reset")
	}
	k := min(len(p), f.n)
	for i := range p[:k] {
		p[i] = 'x'
	}
	f.n -= k
	return k, nil
}

func contractFailedWrite(t *testing.T, s storage.Store) {
	_, err := s.Put(t.Context(), "k/file", &failingReader{n: 1000})
	require.Error(t, err)
	_, err = s.Open(t.Context(), "k/file")
	require.ErrorIs(t, err, storage.ErrNotFound, "a failed write leaves nothing under the key")
}

// contractLarge goes past the S3 backend's part size (16 MiB), so the
// multipart path is exercised too.
func contractLarge(t *testing.T, s storage.Store) {
	data := make([]byte, 17<<20+123)
	_, _ = rand.Read(data)
	n, err := s.Put(t.Context(), "big", bytes.NewReader(data))
	require.NoError(t, err)
	require.EqualValues(t, len(data), n)
	b, info := read(t, s, "big")
	require.EqualValues(t, len(data), info.Size)
	require.True(t, bytes.Equal(data, b), "large file differs after the round trip")

	_, err = s.Put(t.Context(), "big", &failingReader{n: 20 << 20})
	require.Error(t, err)
	b, _ = read(t, s, "big")
	require.True(t, bytes.Equal(data, b), "a failed overwrite must keep the previous value whole")
}

func contractConcurrent(t *testing.T, s storage.Store) {
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			_, err := s.Put(t.Context(), "k/same", bytes.NewReader(bytes.Repeat([]byte{byte('a' + i)}, 1<<16)))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	b, _ := read(t, s, "k/same")
	require.Len(t, b, 1<<16)
	require.Equal(t, bytes.Repeat(b[:1], 1<<16), b)
}

// contractSeek is what http.ServeContent does for Range requests.
func contractSeek(t *testing.T, s storage.Store) {
	_, err := s.Put(t.Context(), "digits", strings.NewReader("0123456789"))
	require.NoError(t, err)
	obj, err := s.Open(t.Context(), "digits")
	require.NoError(t, err)
	defer obj.Close()
	end, err := obj.Seek(0, io.SeekEnd)
	require.NoError(t, err)
	require.EqualValues(t, 10, end)
	_, err = obj.Seek(3, io.SeekStart)
	require.NoError(t, err)
	part := make([]byte, 4)
	_, err = io.ReadFull(obj, part)
	require.NoError(t, err)
	require.Equal(t, "3456", string(part))
	rest, err := io.ReadAll(obj)
	require.NoError(t, err)
	require.Equal(t, "789", string(rest))
}

func contractCancelled(t *testing.T, s storage.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.Put(ctx, "cancelled", strings.NewReader("x"))
	require.ErrorIs(t, err, context.Canceled)
	_, err = s.Open(t.Context(), "cancelled")
	require.ErrorIs(t, err, storage.ErrNotFound)
}

// TestS3RefusesBadSetups checks that a service fails at start, quickly and
// naming the setting, when the bucket cannot be used.
func TestS3RefusesBadSetups(t *testing.T) {
	t.Parallel()
	good := s3Config(t)
	cases := []struct {
		name   string
		change func(c *storage.S3Config)
		want   string
	}{
		{"missing bucket", func(c *storage.S3Config) { c.Bucket = "pp-does-not-exist" }, "does not exist"},
		{"wrong secret", func(c *storage.S3Config) { c.SecretAccessKey = "wrong" }, "Access Denied"},
		{"wrong access key", func(c *storage.S3Config) { c.AccessKeyID = "nobody" }, "S3_BUCKET: "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := good
			tc.change(&cfg)
			start := time.Now()
			_, err := storage.NewS3(t.Context(), cfg)
			require.ErrorContains(t, err, tc.want)
			require.Less(t, time.Since(start), 5*time.Second, "a refusal must not wait for S3_CONNECT_TIMEOUT")
		})
	}

	t.Run("server not answering", func(t *testing.T) {
		t.Parallel()
		cfg := good
		cfg.Endpoint = "http://127.0.0.1:1" // nothing listens on port 1
		cfg.ConnectTimeout = 300 * time.Millisecond
		_, err := storage.NewS3(t.Context(), cfg)
		require.ErrorContains(t, err, "S3_CONNECT_TIMEOUT")
	})
}

// TestS3ObjectsAreFilesOnTheServer checks, through the server's own
// directory, that what the S3 backend writes is really on the server under
// the same key (nothing is kept only in the client).
func TestS3ObjectsAreFilesOnTheServer(t *testing.T) {
	t.Parallel()
	cfg := s3Config(t)
	s, err := storage.NewS3(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	key := storage.RenditionKey("p1", "thumb", 0, "jpg")
	_, err = s.Put(t.Context(), key, strings.NewReader("jpeg bytes"))
	require.NoError(t, err)
	b, err := os.ReadFile(fmt.Sprintf("%s/%s/%s", s3Server.DataDir, cfg.Bucket, key))
	require.NoError(t, err)
	require.Equal(t, "jpeg bytes", string(b))
}
