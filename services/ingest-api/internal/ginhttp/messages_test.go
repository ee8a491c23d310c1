package ginhttp

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
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
