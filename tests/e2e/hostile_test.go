package e2e

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Keys of the hostile-input test's API.
const (
	hostileAPIKey   = "e2e-hostile-api-key-0123456789"
	hostileAdminKey = "e2e-hostile-admin-key-0123456789"
)

// keyed calls ingest-api with a bearer key (none when key is empty).
type keyed struct {
	base, key string
}

func (k keyed) do(tb testing.TB, method, path, ctype string, body io.Reader) (int, http.Header, []byte) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, k.base+path, body)
	require.NoError(tb, err)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if k.key != "" {
		req.Header.Set("Authorization", "Bearer "+k.key)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(tb, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(tb, err)
	return resp.StatusCode, resp.Header, raw
}

// json sends body (a string as is, anything else marshalled) and decodes
// the answer into out when it is not nil.
func (k keyed) json(tb testing.TB, method, path string, body, out any) int {
	tb.Helper()
	r := requestBody(tb, body)
	status, _, raw := k.do(tb, method, path, "application/json", r)
	if out != nil {
		require.NoError(tb, json.Unmarshal(raw, out), "%s %s: %s", method, path, raw)
	}
	return status
}

type hostilePhoto struct {
	UUID    string `json:"uuid"`
	URL     string `json:"url"`
	Status  string `json:"status"`
	Failure *struct {
		Stage     string `json:"stage"`
		Code      string `json:"code"`
		Message   string `json:"message"`
		Retryable bool   `json:"retryable"`
	} `json:"failure"`
	Thumbnails []struct {
		Rendition string `json:"rendition"`
		FileURL   string `json:"file_url"`
	} `json:"thumbnails"`
}

// waitFinal polls the photos until each is completed or failed.
func (k keyed) waitFinal(tb testing.TB, ids []string, timeout time.Duration) map[string]hostilePhoto {
	tb.Helper()
	return pollFinal(tb, func(id string, p *hostilePhoto) int {
		return k.json(tb, http.MethodGet, "/photos/"+id, nil, p)
	}, ids, timeout)
}

// rawHTTP sends request bytes as they are (no client-side cleaning of the
// path, a body shorter than announced) and reads one answer within 10 s.
func rawHTTP(tb testing.TB, addr, request string) (*http.Response, []byte) {
	tb.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(tb, err)
	defer conn.Close()
	require.NoError(tb, conn.SetDeadline(time.Now().Add(10*time.Second)))
	_, err = io.WriteString(conn, request)
	require.NoError(tb, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(tb, err, "an answer within 10 s")
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

// pngChunk encodes one PNG chunk with its CRC.
func pngChunk(kind string, data []byte) []byte {
	out := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	out = append(out, kind...)
	out = append(out, data...)
	return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(append([]byte(kind), data...)))
}

// pixelBombPNG is a PNG of a few KB declaring w x h greyscale pixels.
func pixelBombPNG(tb testing.TB, w, h uint32) []byte {
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 0, 0, 0, 0)
	var idat bytes.Buffer
	zw := zlib.NewWriter(&idat)
	_, err := zw.Write(make([]byte, 1<<20))
	require.NoError(tb, err)
	require.NoError(tb, zw.Close())
	out := []byte("\x89PNG\r\n\x1a\n")
	out = append(out, pngChunk("IHDR", ihdr)...)
	out = append(out, pngChunk("IDAT", idat.Bytes())...)
	return append(out, pngChunk("IEND", nil)...)
}

// hugeJPEG is a real JPEG whose frame header says 65535 x 65535.
func hugeJPEG(tb testing.TB, jpg []byte) []byte {
	out := bytes.Clone(jpg)
	for i := 2; i+9 < len(out); i++ {
		if out[i] == 0xFF && (out[i+1] == 0xC0 || out[i+1] == 0xC2) {
			copy(out[i+5:i+9], []byte{0xFF, 0xFF, 0xFF, 0xFF})
			return out
		}
	}
	tb.Fatal("no frame header in the JPEG")
	return nil
}

func zipArchive(tb testing.TB) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, err := zw.Create("photo.png")
	require.NoError(tb, err)
	_, err = w.Write(bytes.Repeat([]byte("not a png "), 100))
	require.NoError(tb, err)
	require.NoError(tb, zw.Close())
	return b.Bytes()
}

// gzipped compresses head followed by n zero bytes.
func gzipped(tb testing.TB, head []byte, n int) []byte {
	var b bytes.Buffer
	zw, err := gzip.NewWriterLevel(&b, gzip.BestCompression)
	require.NoError(tb, err)
	_, err = zw.Write(append(bytes.Clone(head), make([]byte, n)...))
	require.NoError(tb, err)
	require.NoError(tb, zw.Close())
	return b.Bytes()
}

// pagedPDF is a minimal valid PDF of n blank pages.
func pagedPDF(n int) []byte {
	var b bytes.Buffer
	var offsets []int
	obj := func(body string) {
		offsets = append(offsets, b.Len())
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", len(offsets), body)
	}
	b.WriteString("%PDF-1.4\n")
	obj("<< /Type /Catalog /Pages 2 0 R >>")
	var kids []string
	for i := range n {
		kids = append(kids, fmt.Sprintf("%d 0 R", 3+i))
	}
	obj(fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", strings.Join(kids, " "), n))
	for range n {
		obj("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 72 72] >>")
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(offsets)+1)
	for _, o := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(offsets)+1, xref)
	return b.Bytes()
}

// countingListener serves body on addr and counts the requests that reach
// it: the addresses the downloader must refuse never see one.
func countingListener(tb testing.TB, addr string, body []byte) (string, *atomic.Int32) {
	tb.Helper()
	l, err := net.Listen("tcp", addr)
	require.NoError(tb, err, "listen on %s", addr)
	var hits atomic.Int32
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		_, _ = w.Write(body)
	})}
	go func() { _ = srv.Serve(l) }()
	tb.Cleanup(func() { _ = srv.Close() })
	return l.Addr().String(), &hits
}

// hostileSource serves good photos and every kind of bad answer, on
// 127.0.0.1 (the one loopback address the test's downloader may fetch).
func hostileSource(tb testing.TB, files map[string][]byte, redirects map[string]string) string {
	tb.Helper()
	mux := http.NewServeMux()
	for name, b := range files {
		mux.HandleFunc("/"+name, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(b) })
	}
	for name, to := range redirects {
		mux.HandleFunc("/"+name, func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, to, http.StatusFound) })
	}
	// An error page sent as a photo.
	mux.HandleFunc("/error-page.jpg", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "image/jpeg")
		_, _ = io.WriteString(w, "<!DOCTYPE html>\n<html><head><title>Service Unavailable</title></head><body><h1>Try again later</h1></body></html>\n")
	})
	// A megabyte, announced in Content-Length.
	big := append(bytes.Clone(files["good-1.jpg"]), make([]byte, 1<<20)...)
	mux.HandleFunc("/big.jpg", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(big)))
		_, _ = w.Write(big)
	})
	// The same megabyte, chunked: only counting while streaming catches it.
	mux.HandleFunc("/big-chunked.jpg", func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i < len(big); i += 16 << 10 {
			if _, err := w.Write(big[i:min(i+16<<10, len(big))]); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	})
	// A JPEG and 8 MiB of zeros in 16 KB of gzip, for a client that asks
	// for gzip.
	bomb := gzipped(tb, files["good-1.jpg"], 8<<20)
	mux.HandleFunc("/gzip-bomb.jpg", func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			w.Header().Set("Content-Encoding", "gzip")
			_, _ = w.Write(bomb)
			return
		}
		_, _ = w.Write(make([]byte, 8<<20))
	})
	// A JPEG header, then a byte a second.
	mux.HandleFunc("/slow.jpg", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte{0xFF, 0xD8, 0xFF, 0xE0})
		w.(http.Flusher).Flush()
		for range 60 {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(time.Second):
			}
			if _, err := w.Write([]byte{0}); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	go func() { _ = srv.Serve(l) }()
	tb.Cleanup(func() { _ = srv.Close() })
	return "http://" + l.Addr().String()
}

// TestHostileInput sends SSRF attempts, bombs, lies, floods and traversal
// to the four built services, with API keys and the downloader allowed to
// reach 127.0.0.1 only (other loopback addresses stand for the private
// networks it must refuse). Each case ends in its HTTP status or failure
// code; afterwards every service is still ready and the good photos sent
// alongside are complete.
func TestHostileInput(t *testing.T) {
	env := NewEnv(t)
	for k, v := range map[string]string{
		"AUTH_DISABLED": "false", "API_KEYS": hostileAPIKey, "ADMIN_API_KEYS": hostileAdminKey,
		"DOWNLOAD_ALLOWED_NETWORKS": "127.0.0.1/32",
		"DOWNLOAD_MAX_BYTES":        "256KiB", "DOWNLOAD_TIMEOUT": "2s", "DOWNLOAD_HEADER_TIMEOUT": "2s",
		"DOWNLOAD_RETRIES": "1", "DOWNLOAD_RETRY_DELAY": "100ms",
		"MAX_PHOTOS_PER_REQUEST": "40", "MAX_PHOTOS_PER_JOB": "40", "MAX_BODY_BYTES": "64KiB", "MAX_UPLOAD_BYTES": "1MiB",
		"PDF_MAX_PAGES": "2", "LOG_LEVEL": "debug",
	} {
		env.Extra[k] = v
	}
	raft := raftFiles(t)
	good := map[string][]byte{
		"good-1.jpg": raft["1.jpg"], "good-2.jpg": raft["2.jpg"], "good-3.jpg": raft["3.jpg"], "good-wide.png": encodePNG(t, 900, 300),
	}
	files := map[string][]byte{
		"text.jpg":        []byte("these are not the pixels you are looking for\n"),
		"truncated.jpg":   raft["4.jpg"][:len(raft["4.jpg"])/2],
		"empty.jpg":       {},
		"archive.png":     zipArchive(t),
		"bomb.png":        pixelBombPNG(t, 100000, 100000),
		"huge.jpg":        hugeJPEG(t, raft["5.jpg"]),
		"three-pages.pdf": pagedPDF(3),
	}
	require.Less(t, len(files["bomb.png"]), 8<<10, "the pixel bomb is a few KB")
	for k, v := range good {
		files[k] = v
	}
	privateAddr, privateHits := countingListener(t, "127.0.0.2:0", raft["6.jpg"])
	v6Addr, v6Hits := countingListener(t, "[::1]:0", raft["7.jpg"])
	_, privatePort, _ := net.SplitHostPort(privateAddr)
	src := hostileSource(t, files, map[string]string{
		"redirect-private":  "http://" + privateAddr + "/photo.jpg",
		"redirect-v6":       "http://" + v6Addr + "/photo.jpg",
		"redirect-metadata": "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
		"redirect-ftp":      "ftp://127.0.0.1/photo.jpg",
	})
	_, srcPort, _ := net.SplitHostPort(strings.TrimPrefix(src, "http://"))

	api := env.StartPipeline(1)
	user := keyed{base: api, key: hostileAPIKey}
	admin := keyed{base: api, key: hostileAdminKey}
	anonymous := keyed{base: api}

	// Photos by URL: each ends failed with its code, or completed ("").
	photoCases := []struct{ name, url, code string }{
		{"good jpeg 1", src + "/good-1.jpg", ""},
		{"good jpeg 2", src + "/good-2.jpg", ""},
		{"good jpeg 3", src + "/good-3.jpg", ""},
		{"good png", src + "/good-wide.png", ""},
		{"ssrf: private address", "http://" + privateAddr + "/photo.jpg", "blocked_address"},
		{"ssrf: ipv6 loopback", "http://" + v6Addr + "/photo.jpg", "blocked_address"},
		{"ssrf: ipv4-mapped ipv6", "http://[::ffff:127.0.0.2]:" + privatePort + "/photo.jpg", "blocked_address"},
		{"ssrf: unspecified address reaching the host", "http://0.0.0.0:" + srcPort + "/good-1.jpg", "blocked_address"},
		{"ssrf: cloud metadata", "http://169.254.169.254/latest/meta-data/iam/security-credentials/", "blocked_address"},
		{"ssrf: redirect to a private address", src + "/redirect-private", "blocked_address"},
		{"ssrf: redirect to ipv6 loopback", src + "/redirect-v6", "blocked_address"},
		{"ssrf: redirect to cloud metadata", src + "/redirect-metadata", "blocked_address"},
		{"redirect to ftp", src + "/redirect-ftp", "invalid_url"},
		{"text named .jpg", src + "/text.jpg", "unsupported_format"},
		{"html error page as image/jpeg", src + "/error-page.jpg", "unsupported_format"},
		{"truncated jpeg", src + "/truncated.jpg", "decode_error"},
		{"zero bytes", src + "/empty.jpg", "unsupported_format"},
		{"zip renamed .png", src + "/archive.png", "unsupported_format"},
		{"png declaring 100000x100000", src + "/bomb.png", "pixel_limit"},
		{"jpeg declaring 65535x65535", src + "/huge.jpg", "pixel_limit"},
		{"over the download limit, announced", src + "/big.jpg", "too_large"},
		{"over the download limit, chunked", src + "/big-chunked.jpg", "too_large"},
		{"gzip bomb", src + "/gzip-bomb.jpg", "too_large"},
		{"a byte a second", src + "/slow.jpg", "download_timeout"},
		{"pdf over the page limit", src + "/three-pages.pdf", "page_limit"},
	}
	urls := make([]string, len(photoCases))
	for i, c := range photoCases {
		urls[i] = c.url
	}
	var created struct{ Photos []hostilePhoto }
	require.Equal(t, http.StatusCreated, user.json(t, http.MethodPost, "/photos", map[string]any{"urls": urls, "process": true}, &created))
	require.Len(t, created.Photos, len(photoCases))
	ids := make([]string, len(created.Photos))
	for i, p := range created.Photos {
		ids[i] = p.UUID
	}

	// Meanwhile, requests that are refused at the door.
	errorBody := func(t *testing.T, raw []byte) errorJSON {
		t.Helper()
		var e errorJSON
		require.NoError(t, json.Unmarshal(raw, &e), "a JSON error: %s", raw)
		require.NotEmpty(t, e.Error, "%s", raw)
		return e
	}
	many := func(n int, f func(i int) string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}
	multipartOf := func(parts ...part) (string, *bytes.Buffer) {
		body, ctype := multipartBody(t, parts...)
		return ctype, body
	}
	requestCases := []struct {
		name   string
		client keyed
		method string
		path   string
		ctype  string
		body   func() io.Reader
		status int
		code   string
	}{
		{"no key", anonymous, "POST", "/photos", "application/json", jsonBody(`["http://e.com/a.jpg"]`), 401, "missing_api_key"},
		{"wrong key", keyed{base: api, key: "a-key-that-is-not-configured"}, "POST", "/photos", "application/json", jsonBody(`["http://e.com/a.jpg"]`), 401, "invalid_api_key"},
		{"no key on files", anonymous, "GET", "/files/originals/x/a.jpg", "", nil, 401, "missing_api_key"},
		{"api key on admin endpoints", user, "GET", "/admin/dead-letters", "", nil, 403, "admin_key_required"},
		{"api key replaying dead letters", user, "POST", "/admin/dead-letters/resizer/replay", "application/json", jsonBody(`{"all": true}`), 403, "admin_key_required"},
		{"admin key on admin endpoints", admin, "GET", "/admin/dead-letters", "", nil, 200, ""},
		{"health without a key", anonymous, "GET", "/healthz", "", nil, 200, ""},
		{"readiness without a key", anonymous, "GET", "/readyz", "", nil, 200, ""},
		{"ftp url", user, "POST", "/photos", "application/json", jsonBody(`["ftp://example.com/a.jpg"]`), 400, "invalid_url"},
		{"file url", user, "POST", "/photos", "application/json", jsonBody(`["file:///etc/passwd"]`), 400, "invalid_url"},
		{"gopher url", user, "POST", "/photos", "application/json", jsonBody(`{"url": "gopher://127.0.0.1:6379/_FLUSHALL"}`), 400, "invalid_url"},
		{"malformed json", user, "POST", "/photos", "application/json", jsonBody(`{"urls": ["http://e.com/a.jpg"`), 400, "invalid_json"},
		{"unknown field", user, "POST", "/photos", "application/json", jsonBody(`{"urls": ["http://e.com/a.jpg"], "callback": "x"}`), 400, "invalid_json"},
		{"deeply nested json", user, "POST", "/photos/process", "application/json", jsonBody(strings.Repeat("[", 20000) + strings.Repeat("]", 20000)), 400, "invalid_json"},
		{"json over MAX_BODY_BYTES", user, "POST", "/photos", "application/json", jsonBody(`["http://e.com/` + strings.Repeat("a", 70<<10) + `"]`), 413, "too_large"},
		{"too many photos", user, "POST", "/photos", "application/json",
			jsonBody(mustJSON(t, many(41, func(i int) string { return fmt.Sprintf("http://e.com/%d.jpg", i) }))), 400, "too_many_photos"},
		{"too many uuids to process", user, "POST", "/photos/process", "application/json",
			jsonBody(mustJSON(t, many(41, func(int) string { return ids[0] }))), 400, "too_many_photos"},
		{"too many photos in a job", user, "POST", "/jobs", "application/json",
			jsonBody(mustJSON(t, map[string]any{"groups": []map[string]any{
				{"key": "S1", "urls": many(25, func(i int) string { return fmt.Sprintf("http://e.com/a%d.jpg", i) })},
				{"key": "S2", "urls": many(16, func(i int) string { return fmt.Sprintf("http://e.com/b%d.jpg", i) })},
			}})), 400, "too_many_photos"},
		{"not a uuid", user, "GET", "/photos/not-a-uuid", "", nil, 400, "invalid_uuid"},
		{"upload: text named .jpg", user, "POST", "/photos/upload", "", nil, 415, "unsupported_format"},
		{"upload: zero bytes", user, "POST", "/photos/upload", "", nil, 415, "unsupported_format"},
		{"upload: zip renamed .png", user, "POST", "/photos/upload", "", nil, 415, "unsupported_format"},
		{"upload: html named .jpg", user, "POST", "/photos/upload", "", nil, 415, "unsupported_format"},
		{"upload: not multipart", user, "POST", "/photos/upload", "image/jpeg", func() io.Reader { return bytes.NewReader(raft["1.jpg"]) }, 415, "unsupported_media_type"},
		{"upload: over MAX_UPLOAD_BYTES, chunked", user, "POST", "/photos/upload", "", nil, 413, "too_large"},
		{"upload without a key", anonymous, "POST", "/photos/upload", "", nil, 401, "missing_api_key"},
	}
	uploads := map[string][]part{
		"upload: text named .jpg":                {filePart("notes.jpg", files["text.jpg"])},
		"upload: zero bytes":                     {filePart("empty.jpg", nil)},
		"upload: zip renamed .png":               {filePart("archive.png", files["archive.png"])},
		"upload: html named .jpg":                {filePart("page.jpg", []byte("<html><body>404</body></html>"))},
		"upload without a key":                   {filePart("photo.jpg", raft["1.jpg"])},
		"upload: over MAX_UPLOAD_BYTES, chunked": {filePart("huge.jpg", append(bytes.Clone(raft["1.jpg"]), make([]byte, 3<<19)...))},
	}
	for _, tc := range requestCases {
		t.Run("request/"+tc.name, func(t *testing.T) {
			ctype := tc.ctype
			var body io.Reader
			if tc.body != nil {
				body = tc.body()
			}
			if parts, ok := uploads[tc.name]; ok {
				var b *bytes.Buffer
				ctype, b = multipartOf(parts...)
				// A reader without a length goes chunked: only the
				// streaming limit can stop it.
				body = io.MultiReader(b)
			}
			status, header, raw := tc.client.do(t, tc.method, tc.path, ctype, body)
			require.Equal(t, tc.status, status, "%s", raw)
			if tc.code == "" {
				return
			}
			require.Equal(t, tc.code, errorBody(t, raw).Code)
			if status == http.StatusUnauthorized || status == http.StatusForbidden {
				require.True(t, strings.HasPrefix(header.Get("WWW-Authenticate"), "Bearer "), "a challenge with the %d", status)
			}
		})
	}

	// An upload announcing more than MAX_UPLOAD_BYTES is refused from its
	// headers: the answer comes although most of the body is never sent.
	t.Run("request/upload over MAX_UPLOAD_BYTES, announced", func(t *testing.T) {
		start := time.Now()
		resp, raw := rawHTTP(t, env.APIAddr, "POST /photos/upload HTTP/1.1\r\nHost: photopipe\r\n"+
			"Authorization: Bearer "+hostileAPIKey+"\r\nContent-Type: multipart/form-data; boundary=xyz\r\n"+
			"Content-Length: 104857600\r\n\r\n--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n\r\n"+
			string(raft["1.jpg"]))
		require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, "%s", raw)
		require.Equal(t, "too_large", errorBody(t, raw).Code)
		require.Less(t, time.Since(start), 5*time.Second)
	})

	// Files: nothing outside the storage root is served.
	if env.Backend == "local" {
		outside := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(outside, "secret.txt"), []byte("root:x:0:0:secret"), 0o600))
		require.NoError(t, os.Symlink(outside, filepath.Join(env.Storage, "escape")))
		require.NoError(t, os.MkdirAll(filepath.Join(env.Storage, "thumbnails"), 0o755))
		require.NoError(t, os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(env.Storage, "thumbnails", "link.jpg")))
	}
	for _, target := range []string{
		"/files/../../../../etc/passwd",
		"/files/thumbnails/../../../etc/passwd",
		"/files/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
		"/files/..%2f..%2f..%2fetc%2fpasswd",
		"/files/%2e%2e%5c%2e%2e%5cetc%5cpasswd",
		"/files/%2fetc%2fpasswd",
		"/files//etc/passwd",
		"/files/thumbnails/a%00.jpg",
		"/files/escape/secret.txt",
		"/files/thumbnails/link.jpg",
	} {
		t.Run("files/"+target, func(t *testing.T) {
			resp, raw := rawHTTP(t, env.APIAddr, "GET "+target+" HTTP/1.1\r\nHost: photopipe\r\nAuthorization: Bearer "+
				hostileAPIKey+"\r\nConnection: close\r\n\r\n")
			require.Contains(t, []int{http.StatusBadRequest, http.StatusNotFound}, resp.StatusCode, "%s", raw)
			require.NotContains(t, string(raw), "root:")
			if resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusNotFound {
				require.NotEmpty(t, errorBody(t, raw).Code)
			}
		})
	}

	// A good upload alongside all this.
	var uploaded struct{ Photos []hostilePhoto }
	ctype, body := multipartOf(filePart("alongside.jpg", raft["8.jpg"]))
	status, _, raw := user.do(t, http.MethodPost, "/photos/upload", ctype, body)
	require.Equal(t, http.StatusAccepted, status, "%s", raw)
	require.NoError(t, json.Unmarshal(raw, &uploaded))
	require.Len(t, uploaded.Photos, 1)

	// The photos end as their case says.
	final := user.waitFinal(t, append(ids, uploaded.Photos[0].UUID), 120*time.Second)
	for i, tc := range photoCases {
		t.Run("photo/"+tc.name, func(t *testing.T) {
			p := final[ids[i]]
			if tc.code == "" {
				require.Equal(t, "completed", p.Status, "%s: %+v", tc.url, p.Failure)
				require.NotEmpty(t, p.Thumbnails)
				return
			}
			require.Equal(t, "failed", p.Status, tc.url)
			require.NotNil(t, p.Failure, tc.url)
			require.Equal(t, tc.code, p.Failure.Code, "%s: %s", tc.url, p.Failure.Message)
			require.NotEmpty(t, p.Failure.Message)
		})
	}
	require.Equal(t, "completed", final[uploaded.Photos[0].UUID].Status, "the good upload completed")
	require.Zero(t, privateHits.Load(), "nothing reached the private address")
	require.Zero(t, v6Hits.Load(), "nothing reached the IPv6 loopback address")

	// A flood: a replica with a tight rate limit (a burst of 5, then one
	// request every 100 s) answers 429 with Retry-After once a key's burst
	// is spent, and other keys go on.
	floodAddr := FreeAddr(t)
	env.Start("ingest-api", "HTTP_ADDR="+floodAddr, "RATE_LIMIT_RPS=0.01", "RATE_LIMIT_BURST=5")
	flooder := keyed{base: "http://" + floodAddr, key: hostileAPIKey}
	limited := 0
	var retryAfter string
	for range 20 {
		status, header, raw := flooder.do(t, http.MethodGet, "/photos/pending", "", nil)
		if status == http.StatusTooManyRequests {
			limited++
			retryAfter = header.Get("Retry-After")
			require.Equal(t, "rate_limited", errorBody(t, raw).Code)
			continue
		}
		require.Equal(t, http.StatusOK, status, "%s", raw)
	}
	require.Equal(t, 15, limited, "the burst (5) got through, nothing more")
	n, err := strconv.Atoi(retryAfter)
	require.NoError(t, err, "Retry-After is in seconds: %q", retryAfter)
	require.InDelta(t, 100, n, 5, "Retry-After is the time to the next token")
	status, _, _ = keyed{base: "http://" + floodAddr, key: hostileAdminKey}.do(t, http.MethodGet, "/photos/pending", "", nil)
	require.Equal(t, http.StatusOK, status, "another key is not limited by the first one's flood")

	// Every process is still up and ready, and no log line holds a key.
	for _, p := range env.procs {
		select {
		case <-p.done:
			t.Fatalf("%s exited: %v", p.name, p.err)
		default:
		}
		resp, err := http.Get("http://" + p.health + "/readyz")
		require.NoError(t, err, p.name)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s is ready after the hostile input", p.name)
		require.NotContains(t, p.Output(), hostileAPIKey, "%s logged an API key", p.name)
		require.NotContains(t, p.Output(), hostileAdminKey, "%s logged an admin key", p.name)
		require.NotContains(t, p.Output(), "panic", p.name)
	}
}

func jsonBody(s string) func() io.Reader {
	return func() io.Reader { return strings.NewReader(s) }
}

func mustJSON(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	require.NoError(tb, err)
	return string(b)
}
