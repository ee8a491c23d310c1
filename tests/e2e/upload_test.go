package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// detailedPhoto is GET /photos/{uuid} with every field these tests check.
type detailedPhoto struct {
	UUID       string   `json:"uuid"`
	URL        string   `json:"url"`
	Status     string   `json:"status"`
	Filename   string   `json:"filename"`
	Renditions []string `json:"renditions"`
	Failure    *struct {
		Stage   string `json:"stage"`
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"failure"`
	Original *struct {
		Path        string `json:"path"`
		FileURL     string `json:"file_url"`
		ContentType string `json:"content_type"`
		Bytes       int64  `json:"bytes"`
		Width       int    `json:"width"`
		Height      int    `json:"height"`
		Pages       int    `json:"pages"`
	} `json:"original"`
	Thumbnails []renditionJSON `json:"thumbnails"`
}

type renditionJSON struct {
	Rendition string `json:"rendition"`
	Page      int    `json:"page"`
	URL       string `json:"url"`
	FileURL   string `json:"file_url"`
	Width     int    `json:"width"`
	Height    int    `json:"height"`
	Format    string `json:"format"`
	Bytes     int64  `json:"bytes"`
}

// rendition returns the photo's rendition name of page (0 for images).
func (p detailedPhoto) rendition(tb testing.TB, name string, page int) renditionJSON {
	tb.Helper()
	for _, t := range p.Thumbnails {
		if t.Rendition == name && t.Page == page {
			return t
		}
	}
	require.Failf(tb, "rendition missing", "photo %s (%s) has no %s of page %d: %+v", p.UUID, p.Filename, name, page, p.Thumbnails)
	return renditionJSON{}
}

// part is one multipart field: a file when name is set.
type part struct {
	field, name string
	data        []byte
}

func filePart(name string, data []byte) part { return part{field: "file", name: name, data: data} }

// multipartBody encodes parts as multipart/form-data.
func multipartBody(tb testing.TB, parts ...part) (*bytes.Buffer, string) {
	tb.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	for _, p := range parts {
		if p.name == "" {
			require.NoError(tb, w.WriteField(p.field, string(p.data)))
			continue
		}
		fw, err := w.CreateFormFile(p.field, p.name)
		require.NoError(tb, err)
		_, err = fw.Write(p.data)
		require.NoError(tb, err)
	}
	require.NoError(tb, w.Close())
	return &body, w.FormDataContentType()
}

// postMultipart sends parts to url and decodes the JSON answer into out.
func postMultipart(tb testing.TB, url string, out any, parts ...part) int {
	tb.Helper()
	body, ctype := multipartBody(tb, parts...)
	return postBody(tb, url, ctype, body, out)
}

func postBody(tb testing.TB, url, ctype string, body io.Reader, out any) int {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, body)
	require.NoError(tb, err)
	req.Header.Set("Content-Type", ctype)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(tb, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(tb, err)
	if out != nil {
		require.NoError(tb, json.Unmarshal(raw, out), "body: %s", raw)
	}
	return resp.StatusCode
}

// openAPI lets the test's own requests (multipart, file downloads) through
// ingest-api's authentication: unless the environment configures API keys,
// the API runs without authentication, as in the component tests.
func openAPI(env *Env) {
	if env.Extra["API_KEYS"] == "" && env.Extra["ADMIN_API_KEYS"] == "" && os.Getenv("API_KEYS") == "" {
		env.Extra["AUTH_DISABLED"] = "true"
	}
}

// uploadResponse is POST /photos/upload's answer.
type uploadResponse struct {
	Photos []detailedPhoto `json:"photos"`
}

// errorJSON is the native API's error body.
type errorJSON struct {
	Code  string `json:"code"`
	Error string `json:"error"`
}

// waitPhotos polls GET /photos/{uuid} until every photo is completed or
// failed and returns them by uuid.
func waitPhotos(tb testing.TB, api string, ids []string, timeout time.Duration) map[string]detailedPhoto {
	tb.Helper()
	return pollFinal(tb, func(id string, p *detailedPhoto) int {
		return Call(tb, http.MethodGet, api+"/photos/"+id, nil, p)
	}, ids, timeout)
}

// getFile fetches a stored file through GET /files and returns the answer
// and its body.
func getFile(tb testing.TB, api, fileURL string, header ...string) (*http.Response, []byte) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, api+fileURL, nil)
	require.NoError(tb, err)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(tb, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(tb, err)
	return resp, body
}

// storedFiles lists the files under dir of the storage, relative to it.
func storedFiles(tb testing.TB, env *Env, dir string) []string {
	tb.Helper()
	var out []string
	root := filepath.Join(env.Storage, dir)
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && !strings.HasPrefix(d.Name(), ".") {
			rel, _ := filepath.Rel(env.Storage, path)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(tb, err)
	return out
}

// TestUploadsEndToEnd sends files to POST /photos/upload through the four
// built services: ids at once, one photo and one stored file per file (the
// same name twice included), renditions named in the form, the size limit
// (from Content-Length and while streaming), content sniffing, and nothing
// left behind by a refused request.
func TestUploadsEndToEnd(t *testing.T) {
	env := NewEnv(t)
	openAPI(env)
	env.Extra["MAX_UPLOAD_BYTES"] = "1MiB"
	api := env.StartPipeline(1)
	raft := raftFiles(t)
	jpg := raft["1.jpg"]
	other := encodeJPEG(t, 500, 250)

	// Two files with the same name, a third, and renditions in the form.
	var resp uploadResponse
	start := time.Now()
	require.Equal(t, http.StatusAccepted, postMultipart(t, api+"/photos/upload", &resp,
		part{field: "files", name: "same.jpg", data: jpg},
		part{field: "files", name: "same.jpg", data: other},
		part{field: "files", name: "../../etc/pass wd.PNG", data: encodePNG(t, 50, 40)},
		part{field: "renditions", data: []byte("thumb,small")},
		part{field: "renditions", data: []byte("preview")},
	))
	t.Logf("upload answered in %s", time.Since(start).Round(time.Millisecond))
	require.Len(t, resp.Photos, 3)
	ids := make([]string, 3)
	for i, p := range resp.Photos {
		ids[i] = p.UUID
		assert.Equal(t, "processing", p.Status, "processing is requested with the upload")
		assert.Equal(t, []string{"thumb", "small", "preview"}, p.Renditions)
		require.NotNil(t, p.Original)
		assert.Equal(t, "originals/"+p.UUID+"/"+p.Filename, p.Original.Path)
	}
	assert.NotEqual(t, ids[0], ids[1], "the same name twice is two photos")
	assert.Equal(t, "same.jpg", resp.Photos[0].Filename)
	assert.Equal(t, "same.jpg", resp.Photos[1].Filename)
	assert.Equal(t, "pass_wd.PNG", resp.Photos[2].Filename, "client names are reduced to a safe base name")
	assert.Equal(t, "image/jpeg", resp.Photos[0].Original.ContentType)
	assert.Equal(t, "image/png", resp.Photos[2].Original.ContentType)
	assert.Equal(t, int64(len(jpg)), resp.Photos[0].Original.Bytes)

	// The originals are stored under their photos, byte for byte.
	for i, want := range [][]byte{jpg, other} {
		r, body := getFile(t, api, resp.Photos[i].Original.FileURL)
		require.Equal(t, http.StatusOK, r.StatusCode)
		assert.Equal(t, want, body, "original %d", i)
	}

	final := waitPhotos(t, api, ids, 60*time.Second)
	for i, id := range ids {
		p := final[id]
		require.Equal(t, "completed", p.Status, "%s: %+v", p.Filename, p.Failure)
		require.Len(t, p.Thumbnails, 3)
		assert.Equal(t, 1, p.Original.Pages)
		for _, name := range []string{"thumb", "small", "preview"} {
			rd := p.rendition(t, name, 0)
			assert.Contains(t, rd.URL, "thumbnails/"+id+"/"+name+".")
		}
		if i == 0 {
			assert.Equal(t, [2]int{178, 218}, [2]int{p.Original.Width, p.Original.Height})
		}
	}
	// Separate stored files for the same name.
	assert.Equal(t, []string{"originals/" + ids[0] + "/same.jpg"}, storedFiles(t, env, "originals/"+ids[0]))
	assert.Equal(t, []string{"originals/" + ids[1] + "/same.jpg"}, storedFiles(t, env, "originals/"+ids[1]))

	// Renditions in the query work too, and an unknown one is refused.
	var q uploadResponse
	require.Equal(t, http.StatusAccepted, postMultipart(t, api+"/photos/upload?renditions=square100", &q, filePart("q.jpg", jpg)))
	require.Len(t, q.Photos, 1)
	assert.Equal(t, []string{"square100"}, q.Photos[0].Renditions)
	got := waitPhotos(t, api, []string{q.Photos[0].UUID}, 60*time.Second)[q.Photos[0].UUID]
	require.Equal(t, "completed", got.Status)
	sq := got.rendition(t, "square100", 0)
	assert.Equal(t, [2]int{100, 100}, [2]int{sq.Width, sq.Height})

	t.Run("refused requests store nothing", func(t *testing.T) {
		before := storedFiles(t, env, "originals")
		big := bytes.Repeat([]byte{0xAB}, 2<<20)
		cases := []struct {
			name   string
			parts  []part
			status int
			code   string
		}{
			{"text named .jpg", []part{filePart("ok.jpg", jpg), filePart("notes.jpg", []byte("just text\n"))}, http.StatusUnsupportedMediaType, "unsupported_format"},
			{"empty file", []part{filePart("empty.png", nil)}, http.StatusUnsupportedMediaType, "unsupported_format"},
			{"unknown rendition", []part{filePart("ok.jpg", jpg), {field: "renditions", data: []byte("poster")}}, http.StatusBadRequest, "unknown_rendition"},
			{"no files", []part{{field: "renditions", data: []byte("thumb")}}, http.StatusBadRequest, "no_files"},
			{"over the limit", []part{filePart("ok.jpg", jpg), filePart("big.jpg", append(append([]byte{}, jpg[:64]...), big...))}, http.StatusRequestEntityTooLarge, "too_large"},
		}
		for _, tc := range cases {
			var e errorJSON
			assert.Equal(t, tc.status, postMultipart(t, api+"/photos/upload", &e, tc.parts...), tc.name)
			assert.Equal(t, tc.code, e.Code, tc.name)
			assert.NotEmpty(t, e.Error, tc.name)
		}
		var e errorJSON
		assert.Equal(t, http.StatusUnsupportedMediaType, postBody(t, api+"/photos/upload", "application/json", strings.NewReader(`{"url": "x"}`), &e))
		assert.Equal(t, "unsupported_media_type", e.Code)
		assert.Equal(t, before, storedFiles(t, env, "originals"), "refused uploads leave no files")
	})

	t.Run("limit from Content-Length before the body", func(t *testing.T) {
		body, ctype := multipartBody(t, filePart("big.jpg", bytes.Repeat([]byte{0xFF}, 3<<20)))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, api+"/photos/upload", body)
		require.NoError(t, err)
		req.Header.Set("Content-Type", ctype)
		req.Header.Set("Expect", "100-continue")
		var sent countingReader
		sent.r = body
		req.Body = io.NopCloser(&sent)
		tr := &http.Transport{ExpectContinueTimeout: 10 * time.Second}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var e errorJSON
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&e))
		assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
		assert.Equal(t, "too_large", e.Code)
		assert.Zero(t, sent.n, "the body was refused before it was sent")
	})
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
