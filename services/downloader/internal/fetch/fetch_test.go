package fetch

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/shared/event"
)

// testMaxBytes is the size limit of clients made by newClient.
const testMaxBytes = 1 << 10

// newClient returns a Client with small limits, changed by opts.
func newClient(tb testing.TB, opts ...func(*Config)) *Client {
	tb.Helper()
	cfg := Config{
		MaxBytes:       testMaxBytes,
		ConnectTimeout: 300 * time.Millisecond,
		HeaderTimeout:  300 * time.Millisecond,
		Timeout:        time.Second,
		MaxRedirects:   2,
		UserAgent:      "photopipe-test/1",
		// The test servers listen on loopback, which is refused by default.
		AllowedNetworks: loopback,
	}
	for _, o := range opts {
		o(&cfg)
	}
	c := New(cfg)
	guardLoopback(tb, c)
	tb.Cleanup(c.http.CloseIdleConnections)
	return c
}

// serve starts a loopback server for h and returns its URL.
func serve(tb testing.TB, h http.HandlerFunc) string {
	tb.Helper()
	srv := httptest.NewServer(h)
	tb.Cleanup(srv.Close)
	return srv.URL
}

// wait blocks until the client goes away or d passes, so that servers never
// outlive their test for long.
func wait(r *http.Request, d time.Duration) {
	select {
	case <-r.Context().Done():
	case <-time.After(d):
	}
}

// requireFailure asserts that err is a Failure with code and retryability.
func requireFailure(tb testing.TB, err error, code string, retryable bool) {
	tb.Helper()
	require.Error(tb, err)
	f, ok := event.AsFailure(err)
	require.Truef(tb, ok, "want a Failure, got %T: %v", err, err)
	require.Equal(tb, code, f.Code, f.Message)
	require.Equal(tb, retryable, f.Retryable, f.Message)
}

// fetchAll fetches url and reads the whole body.
func fetchAll(ctx context.Context, c *Client, url string) ([]byte, error) {
	body, err := c.Fetch(ctx, url)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	return io.ReadAll(body)
}

func TestFetchStatus(t *testing.T) {
	t.Parallel()
	image := bytes.Repeat([]byte{0xFF, 0xD8, 0xFF, 0xE0}, 200)
	cases := []struct {
		name      string
		status    int
		wantErr   bool
		retryable bool
	}{
		{name: "200 streams the body", status: http.StatusOK},
		{name: "203 is a success", status: http.StatusNonAuthoritativeInfo},
		{name: "400 is permanent", status: http.StatusBadRequest, wantErr: true},
		{name: "403 is permanent", status: http.StatusForbidden, wantErr: true},
		{name: "404 is permanent", status: http.StatusNotFound, wantErr: true},
		{name: "410 is permanent", status: http.StatusGone, wantErr: true},
		{name: "304 is permanent", status: http.StatusNotModified, wantErr: true},
		{name: "408 is retryable", status: http.StatusRequestTimeout, wantErr: true, retryable: true},
		{name: "429 is retryable", status: http.StatusTooManyRequests, wantErr: true, retryable: true},
		{name: "500 is retryable", status: http.StatusInternalServerError, wantErr: true, retryable: true},
		{name: "502 is retryable", status: http.StatusBadGateway, wantErr: true, retryable: true},
		{name: "503 is retryable", status: http.StatusServiceUnavailable, wantErr: true, retryable: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			url := serve(t, func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tc.status)
				_, _ = w.Write(image)
			})
			got, err := fetchAll(t.Context(), newClient(t), url+"/photo.jpg")
			if tc.wantErr {
				requireFailure(t, err, event.CodeDownloadHTTPStatus, tc.retryable)
				require.Contains(t, err.Error(), strconv.Itoa(tc.status), "the message names the status")
				return
			}
			require.NoError(t, err)
			require.Equal(t, image, got)
		})
	}
}

func TestFetchSendsHeaders(t *testing.T) {
	t.Parallel()
	got := make(chan http.Header, 1)
	url := serve(t, func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
		_, _ = io.WriteString(w, "ok")
	})
	_, err := fetchAll(t.Context(), newClient(t), url)
	require.NoError(t, err)
	h := <-got
	require.Equal(t, "photopipe-test/1", h.Get("User-Agent"))
	require.Contains(t, h.Get("Accept"), "image/*")
}

func TestFetchSizeLimit(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		size    int
		chunked bool
		tooBig  bool
		// declared says the limit is enforced on Content-Length, in Fetch.
		declared bool
	}{
		{name: "content-length exactly the limit", size: testMaxBytes},
		{name: "content-length one over the limit", size: testMaxBytes + 1, tooBig: true, declared: true},
		{name: "chunked exactly the limit", size: testMaxBytes, chunked: true},
		{name: "chunked one under the limit", size: testMaxBytes - 1, chunked: true},
		{name: "chunked one over the limit", size: testMaxBytes + 1, chunked: true, tooBig: true},
		{name: "chunked far over the limit", size: 64 * testMaxBytes, chunked: true, tooBig: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			payload := bytes.Repeat([]byte("x"), tc.size)
			url := serve(t, func(w http.ResponseWriter, r *http.Request) {
				if !tc.chunked {
					w.Header().Set("Content-Length", strconv.Itoa(tc.size))
					_, _ = w.Write(payload)
					return
				}
				// Flushing before the end leaves the length unknown: chunked.
				for chunk := range slices(payload, 100) {
					if _, err := w.Write(chunk); err != nil {
						return
					}
					w.(http.Flusher).Flush()
				}
			})
			body, err := newClient(t).Fetch(t.Context(), url)
			if tc.declared {
				requireFailure(t, err, event.CodeTooLarge, false)
				return
			}
			require.NoError(t, err, "without a Content-Length the headers give no reason to refuse")
			defer body.Close()
			got, err := io.ReadAll(body)
			if tc.tooBig {
				requireFailure(t, err, event.CodeTooLarge, false)
				require.LessOrEqual(t, len(got), testMaxBytes, "never more than the limit reaches the reader")
				return
			}
			require.NoError(t, err)
			require.Equal(t, payload, got)
		})
	}
}

// slices yields b in pieces of n bytes.
func slices(b []byte, n int) func(func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(b) > 0 {
			k := min(n, len(b))
			if !yield(b[:k]) {
				return
			}
			b = b[k:]
		}
	}
}

func TestFetchLimitsDecompressedSize(t *testing.T) {
	t.Parallel()
	// The transport asks for gzip and inflates it transparently, so the limit
	// must hold for what the body inflates to, not for what is sent.
	cases := []struct {
		name   string
		size   int
		tooBig bool
	}{
		{name: "small after inflating", size: testMaxBytes},
		{name: "bomb", size: 256 << 10, tooBig: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var zipped bytes.Buffer
			zw := gzip.NewWriter(&zipped)
			_, err := zw.Write(make([]byte, tc.size))
			require.NoError(t, err)
			require.NoError(t, zw.Close())
			require.Less(t, zipped.Len(), testMaxBytes, "what is sent is within the limit")
			url := serve(t, func(w http.ResponseWriter, r *http.Request) {
				if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
					http.Error(w, "want gzip", http.StatusNotAcceptable)
					return
				}
				w.Header().Set("Content-Encoding", "gzip")
				w.Header().Set("Content-Length", strconv.Itoa(zipped.Len()))
				_, _ = w.Write(zipped.Bytes())
			})
			got, err := fetchAll(t.Context(), newClient(t), url)
			if tc.tooBig {
				requireFailure(t, err, event.CodeTooLarge, false)
				return
			}
			require.NoError(t, err)
			require.Len(t, got, tc.size)
		})
	}
}

func TestFetchRejectsDeclaredSizeBeforeReading(t *testing.T) {
	t.Parallel()
	// The server declares a gigabyte, sends a few bytes and stalls: only a
	// client that refuses on the header returns quickly.
	url := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(1<<30))
		_, _ = w.Write([]byte{0xFF, 0xD8, 0xFF})
		w.(http.Flusher).Flush()
		wait(r, 5*time.Second)
	})
	start := time.Now()
	body, err := newClient(t, func(c *Config) { c.Timeout = 5 * time.Second }).Fetch(t.Context(), url)
	requireFailure(t, err, event.CodeTooLarge, false)
	require.Nil(t, body)
	require.Less(t, time.Since(start), time.Second)
}

func TestFetchTimeouts(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		cfg     func(*Config)
		handler http.HandlerFunc
		// inBody says whether the timeout is met reading the body rather than
		// in Fetch.
		inBody bool
	}{
		{
			name: "server sleeps before headers",
			cfg:  func(c *Config) { c.HeaderTimeout = 100 * time.Millisecond; c.Timeout = 5 * time.Second },
			handler: func(w http.ResponseWriter, r *http.Request) {
				wait(r, 5*time.Second)
				_, _ = io.WriteString(w, "late")
			},
		},
		{
			name: "whole request is over the total timeout before headers",
			cfg:  func(c *Config) { c.HeaderTimeout = 5 * time.Second; c.Timeout = 150 * time.Millisecond },
			handler: func(w http.ResponseWriter, r *http.Request) {
				wait(r, 5*time.Second)
			},
		},
		{
			name:   "server trickles a byte every 200ms",
			cfg:    func(c *Config) { c.HeaderTimeout = 5 * time.Second; c.Timeout = 300 * time.Millisecond },
			inBody: true,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusOK)
				for range 50 {
					if _, err := w.Write([]byte{'x'}); err != nil {
						return
					}
					w.(http.Flusher).Flush()
					select {
					case <-r.Context().Done():
						return
					case <-time.After(200 * time.Millisecond):
					}
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			url := serve(t, tc.handler)
			c := newClient(t, tc.cfg)
			start := time.Now()
			body, err := c.Fetch(t.Context(), url)
			if tc.inBody {
				require.NoError(t, err)
				defer body.Close()
				_, err = io.ReadAll(body)
			}
			requireFailure(t, err, event.CodeDownloadTimeout, true)
			require.Less(t, time.Since(start), time.Second, "the transfer is cut off near its timeout")
		})
	}
}

func TestFetchBrokenTransfer(t *testing.T) {
	t.Parallel()
	// The server promises 1000 bytes, sends 10 and drops the connection.
	url := serve(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", "1000")
		_, _ = w.Write(bytes.Repeat([]byte("x"), 10))
		w.(http.Flusher).Flush()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	})
	_, err := fetchAll(t.Context(), newClient(t), url)
	requireFailure(t, err, event.CodeDownloadError, true)
}

func TestFetchConnectionRefused(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())

	_, err = newClient(t).Fetch(t.Context(), "http://"+addr+"/photo.jpg")
	requireFailure(t, err, event.CodeDownloadError, true)
}

func TestFetchInvalidURL(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, url string }{
		{"ftp scheme", "ftp://example.com/photo.jpg"},
		{"file scheme", "file:///etc/passwd"},
		{"javascript scheme", "javascript:alert(1)"},
		{"not a url", "not a url"},
		{"empty", ""},
		{"missing host", "http:///photo.jpg"},
		{"missing host with https", "https://"},
		{"unparsable", "http://[::1/photo.jpg"},
		{"control character", "http://example.com/\x00"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := newClient(t).Fetch(t.Context(), tc.url)
			requireFailure(t, err, event.CodeInvalidURL, false)
		})
	}
}

func TestFetchRedirects(t *testing.T) {
	t.Parallel()
	// /hops/<n> redirects to /hops/<n-1>; /hops/0 is the image.
	handler := func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/hops/"))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		if n == 0 {
			_, _ = io.WriteString(w, "image")
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/hops/%d", n-1), http.StatusFound)
	}
	cases := []struct {
		name         string
		maxRedirects int
		hops         int
		ok           bool
	}{
		{name: "no redirect with none allowed", maxRedirects: 0, hops: 0, ok: true},
		{name: "one redirect with none allowed", maxRedirects: 0, hops: 1},
		{name: "exactly the cap", maxRedirects: 2, hops: 2, ok: true},
		{name: "one over the cap", maxRedirects: 2, hops: 3},
		{name: "a long chain", maxRedirects: 2, hops: 20},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			url := serve(t, handler)
			c := newClient(t, func(c *Config) { c.MaxRedirects = tc.maxRedirects })
			got, err := fetchAll(t.Context(), c, fmt.Sprintf("%s/hops/%d", url, tc.hops))
			if tc.ok {
				require.NoError(t, err)
				require.Equal(t, "image", string(got))
				return
			}
			requireFailure(t, err, event.CodeDownloadError, false)
		})
	}
}

func TestFetchRedirectToOtherScheme(t *testing.T) {
	t.Parallel()
	for _, target := range []string{"ftp://example.com/photo.jpg", "file:///etc/passwd", "gopher://example.com/"} {
		t.Run(target, func(t *testing.T) {
			t.Parallel()
			url := serve(t, func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, target, http.StatusMovedPermanently)
			})
			_, err := newClient(t).Fetch(t.Context(), url)
			requireFailure(t, err, event.CodeInvalidURL, false)
		})
	}
}

func TestFetchCancelled(t *testing.T) {
	t.Parallel()
	slowHeaders := func(w http.ResponseWriter, r *http.Request) {
		wait(r, 5*time.Second)
	}
	slowBody := func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "x")
		w.(http.Flusher).Flush()
		wait(r, 5*time.Second)
	}
	cases := []struct {
		name    string
		handler http.HandlerFunc
		// cancelAfter is when the context ends; 0 cancels it before Fetch.
		cancelAfter time.Duration
		inBody      bool
	}{
		{name: "before the request", handler: slowHeaders},
		{name: "while waiting for headers", handler: slowHeaders, cancelAfter: 50 * time.Millisecond},
		{name: "while reading the body", handler: slowBody, cancelAfter: 50 * time.Millisecond, inBody: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			url := serve(t, tc.handler)
			c := newClient(t, func(c *Config) { c.HeaderTimeout = 5 * time.Second; c.Timeout = 5 * time.Second })
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tc.cancelAfter == 0 {
				cancel()
			} else {
				time.AfterFunc(tc.cancelAfter, cancel)
			}
			start := time.Now()
			body, err := c.Fetch(ctx, url)
			if tc.inBody {
				require.NoError(t, err)
				defer body.Close()
				_, err = io.ReadAll(body)
			}
			require.ErrorIs(t, err, context.Canceled)
			_, isFailure := event.AsFailure(err)
			require.False(t, isFailure, "stopping is not the photo's fault: %v", err)
			require.Less(t, time.Since(start), time.Second)
		})
	}
}

// stepReader returns its steps one Read at a time.
type stepReader struct {
	steps []step
}

type step struct {
	data string
	err  error
}

func (s *stepReader) Read(p []byte) (int, error) {
	if len(s.steps) == 0 {
		return 0, io.EOF
	}
	st := s.steps[0]
	n := copy(p, st.data)
	if n < len(st.data) {
		s.steps[0].data = st.data[n:]
		return n, nil
	}
	s.steps = s.steps[1:]
	return n, st.err
}

func (s *stepReader) Close() error { return nil }

func TestLimitedBody(t *testing.T) {
	t.Parallel()
	reset := errors.New("connection reset by peer")
	cases := []struct {
		name  string
		limit int64
		steps []step
		want  string
		code  string // empty for success
		retry bool
	}{
		{name: "under the limit", limit: 5, steps: []step{{data: "abc"}}, want: "abc"},
		{name: "exactly the limit", limit: 3, steps: []step{{data: "abc"}}, want: "abc"},
		{name: "exactly the limit with EOF on the last read", limit: 3, steps: []step{{data: "abc", err: io.EOF}}, want: "abc"},
		{name: "empty reads at the limit are not data", limit: 3, steps: []step{{data: "abc"}, {}, {}, {}}, want: "abc"},
		{name: "one byte over", limit: 3, steps: []step{{data: "abcd"}}, want: "abc", code: event.CodeTooLarge},
		{name: "over after empty reads", limit: 3, steps: []step{{data: "abc"}, {}, {data: "d"}}, want: "abc", code: event.CodeTooLarge},
		{name: "reset mid-transfer", limit: 10, steps: []step{{data: "ab"}, {err: reset}}, want: "ab", code: event.CodeDownloadError, retry: true},
		{name: "reset right at the limit", limit: 2, steps: []step{{data: "ab"}, {err: reset}}, want: "ab", code: event.CodeDownloadError, retry: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := &limitedBody{ctx: t.Context(), body: &stepReader{steps: tc.steps}, left: tc.limit, limit: tc.limit}
			got, err := io.ReadAll(b)
			require.Equal(t, tc.want, string(got))
			if tc.code == "" {
				require.NoError(t, err)
				return
			}
			requireFailure(t, err, tc.code, tc.retry)
		})
	}
}
