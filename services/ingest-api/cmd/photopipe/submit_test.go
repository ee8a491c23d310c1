package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// fakePipeline answers like ingest-api's photo routes: uploads and URLs
// become photos that complete on their second poll, except files named
// bad* (refused with 415), URLs containing "broken" (they fail) and URLs
// containing "invalid" (refused with 400).
type fakePipeline struct {
	mu       sync.Mutex
	photos   map[string]string // id -> source
	polls    map[string]int
	uploads  []string // file names, with renditions
	requests []string
}

func newFakePipeline(t *testing.T) (*httptest.Server, *fakePipeline) {
	t.Helper()
	f := &fakePipeline{photos: map[string]string{}, polls: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	return srv, f
}

func (f *fakePipeline) add(source string) string {
	id := fmt.Sprintf("00000000-0000-4000-8000-%012d", len(f.photos)+1)
	f.photos[id] = source
	return id
}

func (f *fakePipeline) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.Method+" "+r.URL.Path)
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/photos/upload":
		mr, err := r.MultipartReader()
		if err != nil {
			w.WriteHeader(http.StatusUnsupportedMediaType)
			return
		}
		var name, renditions string
		for {
			p, err := mr.NextPart()
			if err != nil {
				break
			}
			b, _ := io.ReadAll(p)
			if p.FileName() != "" {
				name = p.FileName()
			} else if p.FormName() == "renditions" {
				renditions = string(b)
			}
		}
		f.uploads = append(f.uploads, name+"|"+renditions)
		if strings.HasPrefix(name, "bad") {
			w.WriteHeader(http.StatusUnsupportedMediaType)
			_, _ = io.WriteString(w, `{"code":"unsupported_format","error":"`+name+` is not an image"}`)
			return
		}
		fmt.Fprintf(w, `{"photos":[{"uuid":%q,"status":"processing"}]}`, f.add(name))
	case r.Method == http.MethodPost && r.URL.Path == "/photos":
		var req struct{ URLs []string }
		_ = json.NewDecoder(r.Body).Decode(&req)
		for i, u := range req.URLs {
			if strings.Contains(u, "invalid") {
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprintf(w, `{"code":"invalid_url","error":"urls[%d]: bad host"}`, i)
				return
			}
		}
		var out []string
		for _, u := range req.URLs {
			out = append(out, fmt.Sprintf(`{"uuid":%q,"status":"processing"}`, f.add(u)))
		}
		fmt.Fprintf(w, `{"photos":[%s]}`, strings.Join(out, ","))
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/photos/"):
		id := strings.TrimPrefix(r.URL.Path, "/photos/")
		src, ok := f.photos[id]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		f.polls[id]++
		switch {
		case f.polls[id] < 2:
			_, _ = io.WriteString(w, `{"status":"processing","thumbnails":[]}`)
		case strings.Contains(src, "broken"):
			_, _ = io.WriteString(w, `{"status":"failed","failure":{"code":"download_http_status","message":"the source answered 404"},"thumbnails":[]}`)
		default:
			fmt.Fprintf(w, `{"status":"completed","thumbnails":[{"file_url":"/files/thumbnails/%s/thumb.jpg"}]}`, id)
		}
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func writeFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, n := range names {
		p := filepath.Join(dir, n)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte("img"), 0o644))
	}
}

func TestSubmitAllComplete(t *testing.T) {
	t.Parallel()
	srv, f := newFakePipeline(t)
	dir := t.TempDir()
	writeFiles(t, dir, "a.jpg", "sub/b.png", ".hidden.jpg", ".git/c.jpg")
	list := filepath.Join(t.TempDir(), "list.txt")
	require.NoError(t, os.WriteFile(list, []byte("# photos\n\nhttp://img.example/1.jpg\n"), 0o644))
	stdin := strings.NewReader("https://img.example/2.jpg\n")

	var out bytes.Buffer
	err := run(t.Context(), []string{"--api", srv.URL, "submit", "--interval", "10ms", "-r", "thumb,small",
		"-f", list, "-f", "-", dir}, func(string) string { return "" }, stdin, &out, srv.Client())
	require.NoError(t, err, out.String())
	s := out.String()
	require.Contains(t, s, "4 completed, 0 failed")
	require.Contains(t, s, "[4/4]")
	for id := range f.photos {
		require.Contains(t, s, srv.URL+"/files/thumbnails/"+id+"/thumb.jpg")
	}
	require.ElementsMatch(t, []string{"a.jpg|thumb,small", "b.png|thumb,small"}, f.uploads, "hidden files are skipped")
	require.Contains(t, s, "http://img.example/1.jpg")
	require.Contains(t, s, "https://img.example/2.jpg")
}

func TestSubmitFailures(t *testing.T) {
	t.Parallel()
	srv, _ := newFakePipeline(t)
	dir := t.TempDir()
	writeFiles(t, dir, "good.jpg", "bad.txt")
	var out bytes.Buffer
	err := run(t.Context(), []string{"--api", srv.URL, "submit", "--interval", "10ms", "--plain",
		filepath.Join(dir, "good.jpg"), filepath.Join(dir, "bad.txt"),
		"http://img.example/ok.jpg", "http://img.example/broken.jpg", "http://invalid.example/x.jpg"},
		func(string) string { return "" }, nil, &out, srv.Client())
	require.ErrorContains(t, err, "3 of 5 photo(s) failed")
	s := out.String()
	require.Contains(t, s, "2 completed, 3 failed")
	require.Contains(t, s, "bad.txt is not an image (unsupported_format)")
	require.Contains(t, s, "download_http_status: the source answered 404")
	require.Contains(t, s, "refused: urls[0]: bad host", "the bad URL alone is refused")
}

func TestSubmitProgressBar(t *testing.T) {
	t.Parallel()
	srv, _ := newFakePipeline(t)
	var out bytes.Buffer
	err := run(t.Context(), []string{"--api", srv.URL, "submit", "--interval", "10ms", "--progress", "bar",
		"http://img.example/1.jpg", "http://img.example/2.jpg"}, func(string) string { return "" }, nil, &out, srv.Client())
	require.NoError(t, err)
	require.Contains(t, out.String(), "2 completed, 0 failed")
	require.NotContains(t, out.String(), "[1/2]", "no per-photo lines with a bar")
}

func TestSubmitUsage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"submit"}, "submit needs files"},
		{[]string{"submit", "--timeout", "soon", "x"}, "not a positive duration"},
		{[]string{"submit", "--progress", "fancy", "x"}, "auto, bar or plain"},
		{[]string{"submit", "--what", "x"}, "unknown flag"},
		{[]string{"submit", "-f"}, "-f needs a value"},
		{[]string{"submit", "/does/not/exist.jpg"}, "not a URL"},
		{[]string{"submit", "-"}, "use -f -"},
	} {
		err := run(t.Context(), tc.args, func(string) string { return "" }, nil, io.Discard, http.DefaultClient)
		require.ErrorContains(t, err, tc.want, tc.args)
	}
}

func TestSubmitRetriesWhenRateLimited(t *testing.T) {
	t.Parallel()
	_, f := newFakePipeline(t)
	var mu sync.Mutex
	limited := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n := limited
		limited++
		mu.Unlock()
		if n%2 == 0 && n < 6 { // every other request at first
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, `{"code":"rate_limited","error":"slow down"}`)
			return
		}
		f.serve(w, r)
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	writeFiles(t, dir, "a.jpg")
	var out bytes.Buffer
	err := run(t.Context(), []string{"--api", srv.URL, "submit", "--interval", "10ms",
		filepath.Join(dir, "a.jpg"), "http://img.example/1.jpg"}, func(string) string { return "" }, nil, &out, srv.Client())
	require.NoError(t, err, out.String())
	require.Contains(t, out.String(), "2 completed, 0 failed")
}

func TestSubmitRefusedKeyStops(t *testing.T) {
	t.Parallel()
	calls := 0
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"code":"invalid_api_key","error":"the API key is not valid"}`)
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	writeFiles(t, dir, "a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg", "f.jpg")
	var out bytes.Buffer
	err := run(t.Context(), []string{"--api", srv.URL, "submit", dir, "http://img.example/1.jpg"},
		func(string) string { return "" }, nil, &out, srv.Client())
	require.ErrorContains(t, err, "invalid_api_key")
	mu.Lock()
	defer mu.Unlock()
	require.Less(t, calls, 7, "stops at the refused key")
}

// TestUploadFailure: a refusal by the API is told from an API that could
// not be reached.
func TestUploadFailure(t *testing.T) {
	require.Equal(t, "upload failed: reach http://127.0.0.1:9: connection refused",
		uploadFailure(errors.New("reach http://127.0.0.1:9: connection refused")))
	require.True(t, strings.HasPrefix(uploadFailure(&apiError{Status: 415, Code: "unsupported_format", Message: "not an image"}), "upload refused: "))
}
