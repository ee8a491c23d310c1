package ginhttp

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/services/ingest-api/internal/app"
	"github.com/photopipe/photopipe/shared/rendition"
	"github.com/photopipe/photopipe/shared/storage"
)

// photoRepo is an app.Repository and app.UploadRepository over a map.
type photoRepo struct {
	photos map[string]app.Photo
}

var (
	_ app.Repository       = (*photoRepo)(nil)
	_ app.UploadRepository = (*photoRepo)(nil)
)

// Create and CreateUploads answer as postgres.Repository does: a photo
// whose processing is requested is processing attempt 1 at once.
func (r *photoRepo) Create(_ context.Context, photos []app.NewPhoto, process bool, _ string) ([]app.Photo, error) {
	out := make([]app.Photo, len(photos))
	for i, p := range photos {
		out[i] = app.Photo{UUID: "00000000-0000-4000-8000-00000000000" + string(rune('1'+i)), URL: p.URL, Status: "pending", Renditions: p.Renditions}
		if process {
			out[i].Status, out[i].Attempt = "processing", 1
		}
		r.photos[out[i].UUID] = out[i]
	}
	return out, nil
}

func (r *photoRepo) RequestProcessing(context.Context, []string, app.ProcessOptions, string) ([]app.ProcessResult, error) {
	return nil, nil
}

func (r *photoRepo) ListPending(context.Context, string, int) ([]app.Photo, error) { return nil, nil }

func (r *photoRepo) Get(_ context.Context, id string) (app.Photo, error) {
	p, ok := r.photos[id]
	if !ok {
		return app.Photo{}, app.ErrNotFound
	}
	return p, nil
}

func (r *photoRepo) CreateUploads(_ context.Context, ups []app.NewUpload, _ string) ([]app.Photo, error) {
	out := make([]app.Photo, len(ups))
	for i, u := range ups {
		out[i] = app.Photo{UUID: u.UUID, Status: "processing", Attempt: 1, Filename: u.Filename, Renditions: u.Renditions,
			Original: &app.Original{Key: u.Key, ContentType: u.ContentType, Bytes: u.Bytes}}
		r.photos[u.UUID] = out[i]
	}
	return out, nil
}

type testAPI struct {
	srv   *httptest.Server
	repo  *photoRepo
	store *storage.Local
}

func newTestAPI(tb testing.TB, maxUpload int64) *testAPI {
	tb.Helper()
	store, err := storage.NewLocal(tb.TempDir())
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = store.Close() })
	repo := &photoRepo{photos: map[string]app.Photo{}}
	presets := rendition.DefaultPresets()
	svc := app.NewService(repo, store, presets, app.Limits{MaxPhotos: 10, MaxURLLength: 2048, PageSize: 10, MaxPageSize: 10})
	gin.SetMode(gin.ReleaseMode)
	engine := gin.New()
	ok := func(c *gin.Context) { c.Status(http.StatusOK) }
	NewHandler(svc, slog.New(slog.DiscardHandler), 1<<20).
		WithUploads(app.NewUploads(repo, store, presets, 10, 2048), maxUpload).Routes(engine, ok, ok)
	srv := httptest.NewServer(engine)
	tb.Cleanup(srv.Close)
	return &testAPI{srv: srv, repo: repo, store: store}
}

// get answers a GET with its status and JSON object.
func (a *testAPI) get(tb testing.TB, path string) (int, map[string]any) {
	tb.Helper()
	resp, err := http.Get(a.srv.URL + path)
	require.NoError(tb, err)
	defer resp.Body.Close()
	var out map[string]any
	require.NoError(tb, json.NewDecoder(resp.Body).Decode(&out))
	return resp.StatusCode, out
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

const photoID = "0b4c7a52-6d0e-4a8e-9a43-2f3d2f1c9b11"

func TestCompatUploadStatusStates(t *testing.T) {
	t.Parallel()
	api := newTestAPI(t, 1<<20)
	done := []app.Thumbnail{
		{Rendition: "small", Page: 0, Key: "thumbnails/" + photoID + "/small.jpg", Format: "jpeg"},
		{Rendition: "resized", Page: 0, Key: "thumbnails/" + photoID + "/resized.jpg", Format: "jpeg"},
	}
	cases := []struct {
		photo      app.Photo
		status     int
		state      string
		resultCode int
		result     any
	}{
		{app.Photo{Status: "pending"}, 200, "PENDING", 404, nil},
		{app.Photo{Status: "processing"}, 200, "PROGRESS", 404, nil},
		{app.Photo{Status: "completed", Thumbnails: done}, 200, "SUCCESS", 200, map[string]any{
			"resized_compressed": "/files/thumbnails/" + photoID + "/resized.jpg",
			"thumbnail":          "/files/thumbnails/" + photoID + "/small.jpg",
		}},
		// Made by another route: the missing renditions are null.
		{app.Photo{Status: "completed", Thumbnails: done[:1]}, 200, "SUCCESS", 200, map[string]any{
			"resized_compressed": nil, "thumbnail": "/files/thumbnails/" + photoID + "/small.jpg",
		}},
		{app.Photo{Status: "failed", Failure: &app.Failure{Code: "decode_error", Message: "bad bytes"}}, 500, "FAILURE", 500, nil},
	}
	for _, tc := range cases {
		tc.photo.UUID = photoID
		api.repo.photos[photoID] = tc.photo
		code, body := api.get(t, "/upload/"+photoID+"/status")
		require.Equal(t, tc.status, code, tc.state)
		require.Equal(t, []string{"detail", "result", "status", "task_id"}, keys(body))
		require.Equal(t, tc.state, body["status"])
		require.Equal(t, photoID, body["task_id"])
		require.NotEmpty(t, body["detail"])
		require.Equal(t, tc.result, body["result"], tc.state)

		code, res := api.get(t, "/upload/"+photoID+"/result")
		require.Equal(t, tc.resultCode, code, tc.state)
		if code == 200 {
			require.Equal(t, map[string]any{"status": "SUCCESS", "result": tc.result}, res)
		} else {
			require.Equal(t, []string{"detail"}, keys(res))
		}
	}
	require.Contains(t, func() string { _, b := api.get(t, "/upload/"+photoID+"/status"); return b["detail"].(string) }(), "decode_error: bad bytes")
}

func TestCompatThumbStates(t *testing.T) {
	t.Parallel()
	api := newTestAPI(t, 1<<20)
	key := "thumbnails/" + photoID + "/square100-p1.jpg"
	_, err := api.store.Put(context.Background(), key, strings.NewReader("\xff\xd8\xffjpeg bytes"))
	require.NoError(t, err)
	for status, want := range map[string]string{"pending": "queued", "processing": "started", "failed": "failed", "completed": "finished"} {
		p := app.Photo{UUID: photoID, Status: status}
		if status == "completed" {
			// A PDF's first page.
			p.Thumbnails = []app.Thumbnail{{Rendition: "square100", Page: 2, Key: "thumbnails/x/none.jpg", Format: "jpeg"},
				{Rendition: "square100", Page: 1, Key: key, Format: "jpeg"}}
		}
		api.repo.photos[photoID] = p
		code, body := api.get(t, "/api/thumb/"+photoID)
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, []string{"image_base64", "status"}, keys(body))
		require.Equal(t, want, body["status"])
		if status == "completed" {
			require.Equal(t, "data:image/jpeg;base64,/9j/anBlZyBieXRlcw==", body["image_base64"])
		} else {
			require.Nil(t, body["image_base64"])
		}
	}
	code, body := api.get(t, "/api/thumb/"+strings.Replace(photoID, "0b", "ff", 1))
	require.Equal(t, http.StatusNotFound, code)
	require.Equal(t, map[string]any{"detail": "Thumb request not found"}, body)

	resp, err := http.Post(api.srv.URL+"/api/thumb", "application/json", strings.NewReader(`{"image_url": "https://example.com/a.jpg", "email": "a@example.com"}`))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	var created map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&created))
	require.Equal(t, []string{"req_id"}, keys(created))
	p := api.repo.photos[created["req_id"].(string)]
	require.Equal(t, []string{"square100"}, p.Renditions)
	require.Equal(t, "https://example.com/a.jpg", p.URL)
	// Requested at creation, the photo is processing at once: rq's started.
	code, body = api.get(t, "/api/thumb/"+p.UUID)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "started", body["status"])
}

// TestUploadLimitWhileStreaming: a chunked body (no Content-Length) is cut
// off at the limit, answered 413, and leaves no file.
func TestUploadLimitWhileStreaming(t *testing.T) {
	t.Parallel()
	api := newTestAPI(t, 64<<10)
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		fw, _ := mw.CreateFormFile("file", "big.jpg")
		_, _ = fw.Write([]byte{0xFF, 0xD8, 0xFF, 0xE0})
		for range 64 { // 1 MiB in all, far over the limit
			if _, err := fw.Write(bytes.Repeat([]byte{0xAA}, 16<<10)); err != nil {
				_ = pw.CloseWithError(err)
				return
			}
		}
		_ = mw.Close()
		_ = pw.Close()
	}()
	req, err := http.NewRequest(http.MethodPost, api.srv.URL+"/photos/upload", pr)
	require.NoError(t, err)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	var e errorBody
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&e))
	require.Equal(t, "too_large", e.Code)
	require.Contains(t, e.Error, "MAX_UPLOAD_BYTES")
	require.Empty(t, api.repo.photos)
}

func TestUploadMalformedBody(t *testing.T) {
	t.Parallel()
	api := newTestAPI(t, 1<<20)
	for name, body := range map[string]string{
		"cut off":        "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n\r\n\xff\xd8\xff\xe0abc",
		"no parts":       "--b--\r\n",
		"field too long": "--b\r\nContent-Disposition: form-data; name=\"renditions\"\r\n\r\n" + strings.Repeat("x", 5000) + "\r\n--b--\r\n",
	} {
		resp, err := http.Post(api.srv.URL+"/photos/upload", "multipart/form-data; boundary=b", strings.NewReader(body))
		require.NoError(t, err)
		var e errorBody
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&e))
		_ = resp.Body.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, name)
		require.NotEmpty(t, e.Code, name)
	}
	resp, err := http.Post(api.srv.URL+"/photos/upload", "multipart/form-data", strings.NewReader(""))
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusUnsupportedMediaType, resp.StatusCode, "no boundary")
	require.Empty(t, api.repo.photos)
}
