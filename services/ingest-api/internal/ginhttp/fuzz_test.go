package ginhttp

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/photopipe/photopipe/services/ingest-api/internal/app"
	"github.com/photopipe/photopipe/shared/rendition"
)

// fuzzBodyLimit is MAX_BODY_BYTES for the fuzzed API: small, so that the
// fuzzer meets the limit too.
const fuzzBodyLimit = 4 << 10

// newFuzzEngine is the API over an in-memory repository, without auth,
// served in-process (no sockets).
func newFuzzEngine(tb testing.TB) *gin.Engine {
	tb.Helper()
	svc := app.NewService(&memRepo{photos: map[string]app.Photo{}}, nil, rendition.DefaultPresets(),
		app.Limits{MaxPhotos: 10, MaxURLLength: 256, PageSize: 10, MaxPageSize: 10})
	gin.SetMode(gin.ReleaseMode)
	engine := gin.New()
	ok := func(c *gin.Context) { c.Status(http.StatusOK) }
	NewHandler(svc, slog.New(slog.DiscardHandler), fuzzBodyLimit).Routes(engine, ok, ok)
	return engine
}

// fuzzRequest sends body to path and checks the answer: one of the
// statuses allowed, JSON, and for errors a code and a message.
func fuzzRequest(t *testing.T, engine *gin.Engine, path string, body []byte, allowed ...int) {
	req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	engine.ServeHTTP(rec, req)
	res := rec.Result()
	raw, _ := io.ReadAll(res.Body)
	ok := false
	for _, s := range allowed {
		ok = ok || res.StatusCode == s
	}
	if !ok {
		t.Fatalf("POST %s %q: status %d, want one of %v: %s", path, body, res.StatusCode, allowed, raw)
	}
	if !json.Valid(raw) {
		t.Fatalf("POST %s %q: the answer is not JSON: %q", path, body, raw)
	}
	if res.StatusCode >= 400 {
		var e errorBody
		if err := json.Unmarshal(raw, &e); err != nil || e.Code == "" || e.Error == "" {
			t.Fatalf("POST %s %q: error without code or message: %s", path, body, raw)
		}
	}
}

// hostileJSON are bodies that are not what the parsers expect.
var hostileJSON = []string{
	``, ` `, `null`, `true`, `0`, `""`, `[`, `]`, `{`, `}`, `[]`, `{}`, `[null]`, `[1]`, `[[]]`, `[{}]`,
	`{"url": 1}`, `{"url": null}`, `{"urls": "x"}`, `{"urls": [1, 2]}`, `{"unknown": 1}`, `{"URL": "http://e.com/a.jpg"}`,
	`{"url": "http://e.com/a.jpg"} {"url": "http://e.com/b.jpg"}`, `{"url": "http://e.com/a.jpg",}`,
	"\xef\xbb\xbf[\"http://e.com/a.jpg\"]", "[\"http://e.com/\xff.jpg\"]", "[\"\\ud800\"]", "[\"a\x00b\"]",
	`["ftp://e.com/a.jpg"]`, `["file:///etc/passwd"]`, `["http://[::1"]`, `["http://:80/a.jpg"]`, `["javascript:alert(1)"]`,
	`{"url": "http://e.com/a.jpg", "process": "yes"}`, `{"url": "http://e.com/a.jpg", "renditions": ["nope"]}`,
	`{"url": "http://e.com/a.jpg", "renditions": "thumb"}`, `[1e999]`, `[-0]`, `{"process": 1e400}`,
	strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
	strings.Repeat("[", 2000) + strings.Repeat("]", 2000),
	`["` + strings.Repeat("a", 300) + `"]`,
	`["` + strings.Repeat("http://e.com/a.jpg\", \"", 11) + `x"]`,
	`{"urls": [` + strings.Repeat(`"http://e.com/a.jpg",`, 300) + `"x"]}`,
}

// FuzzCreatePhotos sends arbitrary bodies to POST /photos: the answer is
// 201, or a JSON error with a code (400, 413); never a panic or a 5xx.
func FuzzCreatePhotos(f *testing.F) {
	for _, s := range append([]string{
		`["http://e.com/a.jpg"]`,
		`{"url": "https://e.com/a.jpg"}`,
		`{"urls": ["https://e.com/a.jpg", "http://e.com/b.png"], "process": true, "renditions": ["thumb", "small"]}`,
		`{"url": "https://e.com/a.jpg", "urls": ["https://e.com/b.jpg"], "process": false, "renditions": []}`,
	}, hostileJSON...) {
		f.Add([]byte(s))
	}
	engine := newFuzzEngine(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzRequest(t, engine, "/photos", body, http.StatusCreated, http.StatusBadRequest, http.StatusRequestEntityTooLarge)
	})
}

// FuzzProcessPhotos sends arbitrary bodies to POST /photos/process: 202,
// 400 or 413 with a JSON error; never a panic or a 5xx.
func FuzzProcessPhotos(f *testing.F) {
	for _, s := range append([]string{
		`["0b4c7a52-6d0e-4a8e-9a43-2f3d2f1c9b11"]`,
		`{"uuids": ["0b4c7a52-6d0e-4a8e-9a43-2f3d2f1c9b11"], "renditions": ["preview"], "reprocess": true}`,
		`{"payload": ["0b4c7a52-6d0e-4a8e-9a43-2f3d2f1c9b11", "0B4C7A52-6D0E-4A8E-9A43-2F3D2F1C9B11"]}`,
		`["urn:uuid:0b4c7a52-6d0e-4a8e-9a43-2f3d2f1c9b11", "{0b4c7a52-6d0e-4a8e-9a43-2f3d2f1c9b11}"]`,
		`["0b4c7a526d0e4a8e9a432f3d2f1c9b11"]`, `[""]`, `["../etc/passwd"]`, `{"uuids": [], "payload": []}`,
	}, hostileJSON...) {
		f.Add([]byte(s))
	}
	engine := newFuzzEngine(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzRequest(t, engine, "/photos/process", body, http.StatusAccepted, http.StatusBadRequest, http.StatusRequestEntityTooLarge)
	})
}
