package ginhttp

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/services/ingest-api/internal/app"
)

// TestErrorMessagesNameTheRequestsFields: an error names the field as the
// request spelled it, and says what a field of the wrong type must be,
// without Go's names for it.
func TestErrorMessagesNameTheRequestsFields(t *testing.T) {
	engine := newFuzzEngine(t)
	for _, tc := range []struct{ path, body, code, message string }{
		{"/photos", `{"url": "hello"}`, "invalid_url", `url: `},
		{"/photos", `{"url": "https://example.com/a.jpg", "urls": ["https://example.com/b.jpg", "hello"]}`, "invalid_url", `urls[1]: `},
		{"/photos", `{"urls": ["hello"]}`, "invalid_url", `urls[0]: `},
		{"/photos", `["hello"]`, "invalid_url", `urls[0]: `},
		{"/photos", `{"urls": "x"}`, "invalid_json", `urls: a string where an array of strings is expected`},
		{"/photos", `{"process": "yes", "urls": []}`, "invalid_json", `process: a string where true or false is expected`},
		{"/photos", `"x"`, "invalid_json", `the body: a string where an object is expected`},
		{"/photos/process", `{"uuids": [1]}`, "invalid_json", `uuids: a number where a string is expected`},
	} {
		req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, tc.path, bytes.NewReader([]byte(tc.body)))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		engine.ServeHTTP(rec, req)
		require.Equal(t, http.StatusBadRequest, rec.Code, "%s %s: %s", tc.path, tc.body, rec.Body)
		var e errorBody
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &e))
		require.Equal(t, tc.code, e.Code, "%s %s", tc.path, tc.body)
		require.Contains(t, e.Error, tc.message, "%s %s", tc.path, tc.body)
		require.NotContains(t, e.Error, "Go struct", "%s %s", tc.path, tc.body)
	}
}

// TestCompatThumbNamesImageURL: the older service's route names its own
// field in a URL's error.
func TestCompatThumbNamesImageURL(t *testing.T) {
	engine := newFuzzEngine(t)
	req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/api/thumb", bytes.NewReader([]byte(`{"image_url": "ftp://example.com/a.jpg"}`)))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	engine.ServeHTTP(rec, req)
	require.Equal(t, http.StatusUnprocessableEntity, rec.Code, "%s", rec.Body)
	var e detailBody
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &e))
	require.Regexp(t, `^image_url: `, e.Detail)
}

// TestPhotoJSONUnknownsAreNull: an upload has no source URL, and an
// original not yet read has no size: null, not "" and 0.
func TestPhotoJSONUnknownsAreNull(t *testing.T) {
	upload := toJSON(app.Photo{UUID: "u", Status: "processing", Original: &app.Original{Key: "originals/u/a.jpg", ContentType: "image/jpeg", Bytes: 3}})
	b, err := json.Marshal(upload)
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal(b, &got))
	require.Contains(t, got, "url")
	require.Nil(t, got["url"])
	orig := got["original"].(map[string]any)
	for _, k := range []string{"width", "height", "pages"} {
		require.Contains(t, orig, k)
		require.Nil(t, orig[k], k)
	}

	done := toJSON(app.Photo{UUID: "d", URL: "https://example.com/a.jpg", Status: "completed",
		Original: &app.Original{Key: "originals/d/a.jpg", Width: 640, Height: 480, Pages: 1}})
	b, err = json.Marshal(done)
	require.NoError(t, err)
	require.Contains(t, string(b), `"url":"https://example.com/a.jpg"`)
	require.Contains(t, string(b), `"width":640,"height":480,"pages":1`)
}
