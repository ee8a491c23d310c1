package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/shared/callback"
)

const e2eCallbackSecret = "e2e-callback-secret-0123456789"

// flakyReceiver is a loopback callback target that, per path, answers the
// first try with a 500, lets the second time out, and accepts the third;
// it checks every signature and keeps every request.
type flakyReceiver struct {
	*httptest.Server
	mu   sync.Mutex
	got  map[string][]callbackRequest
	bad  []string
	stop chan struct{}
}

type callbackRequest struct {
	Body     []byte
	Delivery string
	Attempt  string
}

func newFlakyReceiver(t *testing.T) *flakyReceiver {
	t.Helper()
	r := &flakyReceiver{got: map[string][]callbackRequest{}, stop: make(chan struct{})}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		if !callback.Verify([]byte(e2eCallbackSecret), body, req.Header.Get(callback.SignatureHeader)) {
			r.bad = append(r.bad, req.URL.Path+": bad signature "+req.Header.Get(callback.SignatureHeader))
		}
		r.got[req.URL.Path] = append(r.got[req.URL.Path], callbackRequest{
			Body: body, Delivery: req.Header.Get(callback.DeliveryHeader), Attempt: req.Header.Get(callback.AttemptHeader),
		})
		n := len(r.got[req.URL.Path])
		r.mu.Unlock()
		switch n {
		case 1:
			w.WriteHeader(http.StatusInternalServerError)
		case 2:
			select { // longer than CALLBACK_TIMEOUT
			case <-req.Context().Done():
			case <-r.stop:
			case <-time.After(10 * time.Second):
			}
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	t.Cleanup(func() {
		close(r.stop)
		r.Close()
	})
	return r
}

func (r *flakyReceiver) requests(path string) []callbackRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]callbackRequest(nil), r.got[path]...)
}

type callbackState struct {
	URL      string `json:"url"`
	Status   string `json:"status"`
	Attempts []struct {
		Attempt    int       `json:"attempt"`
		At         time.Time `json:"at"`
		StatusCode int       `json:"status_code"`
		Error      string    `json:"error"`
		DurationMS int64     `json:"duration_ms"`
	} `json:"attempts"`
}

// waitCallback polls path (GET /photos/{id} or /jobs/{id}) until its
// callback is delivered or failed.
func waitCallback(t *testing.T, url string) callbackState {
	t.Helper()
	var v struct {
		Callback *callbackState `json:"callback"`
	}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		v.Callback = nil
		require.Equal(c, http.StatusOK, Call(t, http.MethodGet, url, nil, &v))
		require.NotNil(c, v.Callback)
		require.Contains(c, []string{"delivered", "failed"}, v.Callback.Status, "callback %+v", v.Callback)
	}, 90*time.Second, 200*time.Millisecond)
	return *v.Callback
}

// requireThreeTries: a 500, a timeout, then accepted; all recorded.
func requireThreeTries(t *testing.T, cb callbackState, receiverURL string) {
	t.Helper()
	require.Equal(t, receiverURL, cb.URL)
	require.Equal(t, "delivered", cb.Status)
	require.Len(t, cb.Attempts, 3)
	require.Equal(t, http.StatusInternalServerError, cb.Attempts[0].StatusCode)
	require.Contains(t, cb.Attempts[0].Error, "500")
	require.Zero(t, cb.Attempts[1].StatusCode)
	require.Contains(t, cb.Attempts[1].Error, "timed out")
	require.Equal(t, http.StatusNoContent, cb.Attempts[2].StatusCode)
	require.Empty(t, cb.Attempts[2].Error)
	for i, a := range cb.Attempts {
		require.Equal(t, i+1, a.Attempt)
		require.False(t, a.At.IsZero())
	}
	require.True(t, cb.Attempts[1].At.After(cb.Attempts[0].At) && cb.Attempts[2].At.After(cb.Attempts[1].At))
}

// requireSigned: the receiver got three tries of one delivery, the same
// body each time, all signed with the deployment's secret.
func requireSigned(t *testing.T, rcv *flakyReceiver, path string) []byte {
	t.Helper()
	got := rcv.requests(path)
	require.Len(t, got, 3, "two failures, then accepted, then nothing more")
	for i, r := range got {
		require.Equal(t, got[0].Delivery, r.Delivery)
		require.Equal(t, string(got[0].Body), string(r.Body))
		require.Equal(t, string(rune('1'+i)), r.Attempt)
	}
	require.NotEmpty(t, got[0].Delivery)
	return got[0].Body
}

// TestCallbacks: a photo, an uploaded photo and a job with a callback URL each get a signed
// POST when they finish, retried through a 500 and a timeout until the
// receiver accepts, and GET shows the three tries.
func TestCallbacks(t *testing.T) {
	env := NewEnv(t)
	env.Extra["CALLBACK_SECRET"] = e2eCallbackSecret
	env.Extra["CALLBACK_TIMEOUT"] = "1s"
	env.Extra["CALLBACK_BACKOFF_MIN"] = "200ms"
	env.Extra["CALLBACK_BACKOFF_MAX"] = "500ms"
	env.Extra["CALLBACK_MAX_ATTEMPTS"] = "5"
	src, _ := countingServer(t, encodeJPEG(t, 400, 300))
	rcv := newFlakyReceiver(t)
	api := env.StartPipeline(1)

	var created struct {
		Photos []struct {
			UUID string `json:"uuid"`
		} `json:"photos"`
	}
	require.Equal(t, http.StatusCreated, Call(t, http.MethodPost, api+"/photos", map[string]any{
		"urls": []string{src.URL + "/photo.jpg"}, "process": true, "callback_url": rcv.URL + "/photo",
	}, &created))
	require.Len(t, created.Photos, 1)
	photoID := created.Photos[0].UUID

	var uploaded struct {
		Photos []struct {
			UUID string `json:"uuid"`
		} `json:"photos"`
	}
	require.Equal(t, http.StatusAccepted, postMultipart(t, api+"/photos/upload", &uploaded,
		filePart("upload.jpg", encodeJPEG(t, 200, 100)), part{field: "callback_url", data: []byte(rcv.URL + "/upload")}))
	require.Len(t, uploaded.Photos, 1)

	var job struct {
		JobID string `json:"job_id"`
	}
	require.Equal(t, http.StatusAccepted, Call(t, http.MethodPost, api+"/jobs", map[string]any{
		"groups": []map[string]any{
			{"key": "S1", "urls": []string{src.URL + "/s1-a.jpg", src.URL + "/s1-missing.jpg", src.URL + "/s1-c.jpg"}},
			{"key": "S2", "urls": []string{src.URL + "/s2-a.jpg"}},
		},
		"callback_url": rcv.URL + "/job",
	}, &job))

	requireThreeTries(t, waitCallback(t, api+"/photos/"+photoID), rcv.URL+"/photo")
	var photoBody callback.Photo
	require.NoError(t, json.Unmarshal(requireSigned(t, rcv, "/photo"), &photoBody))
	require.Equal(t, callback.TypePhoto, photoBody.Type)
	require.Equal(t, photoID, photoBody.ID)
	require.Equal(t, "completed", photoBody.Status)
	require.Equal(t, 1, photoBody.Attempt)
	require.NotNil(t, photoBody.Original)
	require.Equal(t, 400, photoBody.Original.Width)
	require.Len(t, photoBody.Results, 1)
	require.Equal(t, "thumb", photoBody.Results[0].Rendition)
	require.Equal(t, 320, photoBody.Results[0].Width)
	require.Equal(t, "/files/"+photoBody.Results[0].Path, photoBody.Results[0].FileURL)
	require.Empty(t, photoBody.Errors)

	requireThreeTries(t, waitCallback(t, api+"/photos/"+uploaded.Photos[0].UUID), rcv.URL+"/upload")
	var uploadBody callback.Photo
	require.NoError(t, json.Unmarshal(requireSigned(t, rcv, "/upload"), &uploadBody))
	require.Equal(t, uploaded.Photos[0].UUID, uploadBody.ID)
	require.Equal(t, "completed", uploadBody.Status)
	require.Len(t, uploadBody.Results, 1)

	requireThreeTries(t, waitCallback(t, api+"/jobs/"+job.JobID), rcv.URL+"/job")
	var jobBody callback.Job
	require.NoError(t, json.Unmarshal(requireSigned(t, rcv, "/job"), &jobBody))
	require.Equal(t, callback.TypeJob, jobBody.Type)
	require.Equal(t, job.JobID, jobBody.ID)
	require.Equal(t, "failed", jobBody.Status)
	require.Equal(t, 4, jobBody.Total)
	require.Equal(t, map[string]int{"completed": 2, "failed": 1, "skipped": 1}, jobBody.Counts)
	require.Len(t, jobBody.Errors, 1)
	require.Equal(t, "S1", jobBody.Errors[0].Group)
	require.Contains(t, jobBody.Errors[0].Error, "404")

	rcv.mu.Lock()
	require.Empty(t, rcv.bad, "every request carries a valid signature")
	rcv.mu.Unlock()
}

// TestCallbackToForbiddenAddress: callback targets obey the download
// address rules; with loopback not allowed the callback fails at once,
// visibly, without reaching the receiver.
func TestCallbackToForbiddenAddress(t *testing.T) {
	env := NewEnv(t)
	env.Extra["CALLBACK_SECRET"] = e2eCallbackSecret
	src, _ := countingServer(t, encodeJPEG(t, 64, 48))
	rcv := newFlakyReceiver(t)
	// Downloads from loopback stay allowed; callbacks get their own rule.
	env.Extra["CALLBACK_ALLOWED_NETWORKS"] = "192.0.2.1"
	api := env.StartPipeline(1)

	var created struct {
		Photos []struct {
			UUID string `json:"uuid"`
		} `json:"photos"`
	}
	require.Equal(t, http.StatusCreated, Call(t, http.MethodPost, api+"/photos", map[string]any{
		"urls": []string{src.URL + "/p.jpg"}, "process": true, "callback_url": rcv.URL + "/photo",
	}, &created))
	cb := waitCallback(t, api+"/photos/"+created.Photos[0].UUID)
	require.Equal(t, "failed", cb.Status)
	require.Len(t, cb.Attempts, 1)
	require.Contains(t, cb.Attempts[0].Error, "not allowed")
	require.Empty(t, rcv.requests("/photo"))
}
