package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"image"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rawJSON decodes a JSON object keeping every key, to check exact shapes.
type rawJSON map[string]json.RawMessage

func (r rawJSON) keys() []string {
	out := make([]string, 0, len(r))
	for k := range r {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (r rawJSON) str(tb testing.TB, key string) string {
	tb.Helper()
	var s string
	require.NoError(tb, json.Unmarshal(r[key], &s), "%s: %s", key, r[key])
	return s
}

// TestCompatRoutesEndToEnd checks the exact request and response shapes of
// the older services' routes through the four built services. The
// pipeline is started one service at a time, so that every state is seen
// for sure: PROGRESS from the upload on (only ingest-api runs; a photo is
// processing once requested), still PROGRESS with no resizer, then
// SUCCESS.
func TestCompatRoutesEndToEnd(t *testing.T) {
	env := NewEnv(t)
	openAPI(env)
	raft := raftFiles(t)
	src := ImageServer(t, map[string][]byte{"photo.jpg": raft["2.jpg"], "wide.jpg": encodeJPEG(t, 900, 300)})
	env.APIAddr = FreeAddr(t)
	env.Start("ingest-api", "HTTP_ADDR="+env.APIAddr)
	api := "http://" + env.APIAddr

	// Upload service: POST /upload with the multipart field "file".
	var up rawJSON
	require.Equal(t, http.StatusOK, postMultipart(t, api+"/upload", &up, filePart("sample photo.jpg", raft["1.jpg"])))
	assert.Equal(t, []string{"filename", "id", "message", "result_url", "status_url", "task_id"}, up.keys())
	taskID := up.str(t, "task_id")
	assert.Equal(t, taskID, up.str(t, "id"))
	assert.Equal(t, "sample photo.jpg", up.str(t, "filename"))
	assert.Equal(t, "/upload/"+taskID+"/status", up.str(t, "status_url"))
	assert.Equal(t, "/upload/"+taskID+"/result", up.str(t, "result_url"))
	assert.NotEmpty(t, up.str(t, "message"))
	var bad rawJSON
	require.Equal(t, http.StatusOK, postMultipart(t, api+"/upload", &bad, filePart("broken.png", append([]byte("\x89PNG\r\n\x1a\n"), "not really"...))))
	badID := bad.str(t, "task_id")

	// Thumbnail service: POST /api/thumb.
	var th rawJSON
	require.Equal(t, http.StatusCreated, Call(t, http.MethodPost, api+"/api/thumb",
		map[string]string{"image_url": src.URL + "/photo.jpg", "email": "someone@example.com"}, &th))
	assert.Equal(t, []string{"req_id"}, th.keys())
	reqID := th.str(t, "req_id")
	var thMissing rawJSON
	require.Equal(t, http.StatusCreated, Call(t, http.MethodPost, api+"/api/thumb",
		map[string]string{"image_url": src.URL + "/missing.jpg"}, &thMissing))
	missingID := thMissing.str(t, "req_id")

	statusOf := func(id string) (int, rawJSON) {
		var out rawJSON
		code := Call(t, http.MethodGet, api+"/upload/"+id+"/status", nil, &out)
		return code, out
	}
	thumbOf := func(id string) (int, rawJSON) {
		var out rawJSON
		code := Call(t, http.MethodGet, api+"/api/thumb/"+id, nil, &out)
		return code, out
	}

	// Only ingest-api runs: nothing has been picked up, but processing was
	// requested with the upload.
	code, st := statusOf(taskID)
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, []string{"detail", "result", "status", "task_id"}, st.keys())
	assert.Equal(t, taskID, st.str(t, "task_id"))
	assert.Equal(t, "PROGRESS", st.str(t, "status"))
	assert.Equal(t, "null", string(st["result"]))
	var notDone rawJSON
	assert.Equal(t, http.StatusNotFound, Call(t, http.MethodGet, api+"/upload/"+taskID+"/result", nil, &notDone))
	assert.Equal(t, []string{"detail"}, notDone.keys())
	code, tj := thumbOf(reqID)
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, []string{"image_base64", "status"}, tj.keys())
	assert.Equal(t, "started", tj.str(t, "status"))
	assert.Equal(t, "null", string(tj["image_base64"]))

	// Recorder and downloader, no resizer: the originals are in, the
	// photos are processing.
	env.Start("recorder")
	env.Start("downloader")
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		_, st := statusOf(taskID)
		assert.Equal(c, `"PROGRESS"`, string(st["status"]))
		_, tj := thumbOf(reqID)
		assert.Equal(c, `"started"`, string(tj["status"]))
	}, 60*time.Second, 100*time.Millisecond)
	assert.Equal(t, http.StatusNotFound, Call(t, http.MethodGet, api+"/upload/"+taskID+"/result", nil, &notDone))
	_, tj = thumbOf(reqID)
	assert.Equal(t, "null", string(tj["image_base64"]))

	env.Start("resizer")
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		_, st := statusOf(taskID)
		assert.Equal(c, `"SUCCESS"`, string(st["status"]))
		_, tj := thumbOf(reqID)
		assert.Equal(c, `"finished"`, string(tj["status"]))
		code, _ := statusOf(badID)
		assert.Equal(c, http.StatusInternalServerError, code)
		_, tm := thumbOf(missingID)
		assert.Equal(c, `"failed"`, string(tm["status"]))
	}, 90*time.Second, 100*time.Millisecond)

	t.Run("upload service", func(t *testing.T) {
		code, st := statusOf(taskID)
		require.Equal(t, http.StatusOK, code)
		assert.Equal(t, []string{"detail", "result", "status", "task_id"}, st.keys())
		var result rawJSON
		require.NoError(t, json.Unmarshal(st["result"], &result))
		assert.Equal(t, []string{"resized_compressed", "thumbnail"}, result.keys())

		var res struct {
			Status string `json:"status"`
			Result struct {
				ResizedCompressed string `json:"resized_compressed"`
				Thumbnail         string `json:"thumbnail"`
			} `json:"result"`
		}
		var raw rawJSON
		require.Equal(t, http.StatusOK, Call(t, http.MethodGet, api+"/upload/"+taskID+"/result", nil, &raw))
		assert.Equal(t, []string{"result", "status"}, raw.keys())
		require.Equal(t, http.StatusOK, Call(t, http.MethodGet, api+"/upload/"+taskID+"/result", nil, &res))
		assert.Equal(t, "SUCCESS", res.Status)
		assert.Equal(t, "/files/thumbnails/"+taskID+"/resized.jpg", res.Result.ResizedCompressed)
		assert.Equal(t, "/files/thumbnails/"+taskID+"/small.jpg", res.Result.Thumbnail)
		assert.Equal(t, res.Result.ResizedCompressed, result.str(t, "resized_compressed"))
		for path, box := range map[string][2]int{res.Result.ResizedCompressed: {800, 600}, res.Result.Thumbnail: {128, 128}} {
			r, body := getFile(t, api, path)
			require.Equal(t, http.StatusOK, r.StatusCode, path)
			assert.Equal(t, "image/jpeg", r.Header.Get("Content-Type"))
			cfg, format, err := image.DecodeConfig(bytes.NewReader(body))
			require.NoError(t, err)
			assert.Equal(t, "jpeg", format)
			// 178x218 fits both boxes... except the thumbnail's.
			w, h := fitIn(178, 218, box[0], box[1])
			assert.Equal(t, [2]int{w, h}, [2]int{cfg.Width, cfg.Height}, path)
		}

		code, failed := statusOf(badID)
		assert.Equal(t, http.StatusInternalServerError, code)
		assert.Equal(t, "FAILURE", failed.str(t, "status"))
		assert.Contains(t, failed.str(t, "detail"), "decode_error")
		assert.Equal(t, "null", string(failed["result"]))
		var fr rawJSON
		assert.Equal(t, http.StatusInternalServerError, Call(t, http.MethodGet, api+"/upload/"+badID+"/result", nil, &fr))
		assert.Equal(t, []string{"detail"}, fr.keys())

		for _, id := range []string{"3fa85f64-5717-4562-b3fc-2c963f66afa6", "not-a-uuid"} {
			var nf rawJSON
			assert.Equal(t, http.StatusNotFound, Call(t, http.MethodGet, api+"/upload/"+id+"/status", nil, &nf))
			assert.Equal(t, "Task not found", nf.str(t, "detail"))
			assert.Equal(t, http.StatusNotFound, Call(t, http.MethodGet, api+"/upload/"+id+"/result", nil, &nf))
		}
		var e rawJSON
		assert.Equal(t, http.StatusUnsupportedMediaType, postMultipart(t, api+"/upload", &e, filePart("notes.jpg", []byte("text"))))
		assert.Equal(t, []string{"detail"}, e.keys())
		assert.Equal(t, http.StatusUnprocessableEntity, postMultipart(t, api+"/upload", &e, part{field: "other", name: "a.jpg", data: raft["1.jpg"]}))
		assert.Equal(t, http.StatusUnprocessableEntity, postMultipart(t, api+"/upload", &e, part{field: "x", data: []byte("y")}))
		assert.Equal(t, []string{"detail"}, e.keys())
	})

	t.Run("thumbnail service", func(t *testing.T) {
		code, tj := thumbOf(reqID)
		require.Equal(t, http.StatusOK, code)
		assert.Equal(t, []string{"image_base64", "status"}, tj.keys())
		uri := tj.str(t, "image_base64")
		data, ok := strings.CutPrefix(uri, "data:image/jpeg;base64,")
		require.True(t, ok, "a JPEG data URI: %.40s", uri)
		jpg, err := base64.StdEncoding.DecodeString(data)
		require.NoError(t, err)
		cfg, format, err := image.DecodeConfig(bytes.NewReader(jpg))
		require.NoError(t, err)
		assert.Equal(t, "jpeg", format)
		assert.Equal(t, [2]int{100, 100}, [2]int{cfg.Width, cfg.Height}, "the 100x100 centre square")

		_, tm := thumbOf(missingID)
		assert.Equal(t, "null", string(tm["image_base64"]))

		for _, id := range []string{"3fa85f64-5717-4562-b3fc-2c963f66afa6", "nope"} {
			var nf rawJSON
			assert.Equal(t, http.StatusNotFound, Call(t, http.MethodGet, api+"/api/thumb/"+id, nil, &nf))
			assert.Equal(t, []string{"detail"}, nf.keys())
			assert.Equal(t, "Thumb request not found", nf.str(t, "detail"))
		}
		for _, body := range []string{`{"email": "a@example.com"}`, `{"image_url": "ftp://x/y.jpg"}`,
			`{"image_url": "` + src.URL + `/wide.jpg", "email": "not an address"}`, `{"image_url": 5}`} {
			var e rawJSON
			assert.Equal(t, http.StatusUnprocessableEntity, Call(t, http.MethodPost, api+"/api/thumb", body, &e), body)
			assert.Equal(t, []string{"detail"}, e.keys(), body)
		}
	})

	t.Run("image converter", func(t *testing.T) {
		// The converter's client: upload pdf, png and jpeg (two with the
		// same name), get ids at once, ask for the state, get the PNG paths
		// with their resolutions, page by page, and the originals' paths.
		var resp uploadResponse
		require.Equal(t, http.StatusAccepted, postMultipart(t, api+"/photos/upload?renditions=preview", &resp,
			filePart("doc.pdf", raft["Backend_Test_Raft.pdf"]),
			filePart("scan.png", encodePNG(t, 4000, 1000)),
			filePart("scan.png", encodePNG(t, 30, 20)),
			filePart("photo.jpg", raft["3.jpg"]),
		))
		require.Len(t, resp.Photos, 4)
		var ids []string
		for _, p := range resp.Photos {
			ids = append(ids, p.UUID)
		}
		final := waitPhotos(t, api, ids, 120*time.Second)
		pdf := final[ids[0]]
		require.Equal(t, "completed", pdf.Status)
		assert.Equal(t, "originals/"+ids[0]+"/doc.pdf", pdf.Original.Path)
		require.Len(t, pdf.Thumbnails, 5)
		for i, th := range pdf.Thumbnails {
			assert.Equal(t, i+1, th.Page, "pages in order")
			assert.Equal(t, "png", th.Format)
			assert.LessOrEqual(t, max(th.Width, th.Height), 3500)
		}
		big := final[ids[1]].rendition(t, "preview", 0)
		assert.Equal(t, [2]int{3500, 875}, [2]int{big.Width, big.Height}, "fits 3500x3500")
		small := final[ids[2]].rendition(t, "preview", 0)
		assert.Equal(t, [2]int{30, 20}, [2]int{small.Width, small.Height}, "never upscaled")
		assert.NotEqual(t, final[ids[1]].Original.Path, final[ids[2]].Original.Path, "same name, separate files")
		assert.Equal(t, "png", final[ids[3]].rendition(t, "preview", 0).Format)
	})
}
