package e2e

import (
	"fmt"
	"image"
	_ "image/jpeg"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type photo struct {
	UUID        string `json:"uuid"`
	URL         string `json:"url"`
	Status      string `json:"status"`
	FailureCode string `json:"failure_code"`
	Failure     *struct {
		Code, Message, Stage string
	} `json:"failure"`
	Original *struct {
		Path        string `json:"path"`
		ContentType string `json:"content_type"`
		Width       int    `json:"width"`
		Height      int    `json:"height"`
	} `json:"original"`
	Thumbnails []struct {
		Rendition string `json:"rendition"`
		URL       string `json:"url"`
		FileURL   string `json:"file_url"`
		Width     int    `json:"width"`
		Height    int    `json:"height"`
	} `json:"thumbnails"`
}

func waitFinal(t *testing.T, api string, ids []string, timeout time.Duration) map[string]photo {
	t.Helper()
	return pollFinal(t, func(id string, p *photo) int {
		return Call(t, http.MethodGet, api+"/photos/"+id, nil, p)
	}, ids, timeout)
}

// TestPipelineEndToEnd runs the four services as built binaries against
// the real RabbitMQ and Postgres, with two resizer replicas, and follows
// real and generated images, a 404 and a non-image to their final state.
func TestPipelineEndToEnd(t *testing.T) {
	env := NewEnv(t)
	files := raftFiles(t)
	files["big.jpg"] = encodeJPEG(t, 1600, 1200)
	files["wide.png"] = encodePNG(t, 1000, 400)
	files["tall-palette.png"] = encodePalettedPNG(t, 300, 900)
	files["anim.gif"] = encodeGIF(t, 640, 480)
	files["notes.txt"] = []byte("these are not the pixels you are looking for")
	src := ImageServer(t, files)
	api := env.StartPipeline(2)

	var good []string
	for name := range files {
		if strings.HasSuffix(name, ".jpg") || strings.HasSuffix(name, ".png") || strings.HasSuffix(name, ".gif") ||
			strings.HasSuffix(name, ".actually-jpeg") {
			good = append(good, src.URL+"/"+name)
		}
	}
	bad := map[string]string{
		src.URL + "/missing.jpg": "download_http_status",
		src.URL + "/notes.txt":   "unsupported_format",
	}
	urls := append([]string{}, good...)
	for u := range bad {
		urls = append(urls, u)
	}

	// Half registered and processed at once, half registered, listed as
	// pending, then processed by uuid.
	half := len(urls) / 2
	start := time.Now()
	var created struct{ Photos []photo }
	require.Equal(t, http.StatusCreated, Call(t, http.MethodPost, api+"/photos",
		map[string]any{"urls": urls[:half], "process": true}, &created))
	var later struct{ Photos []photo }
	require.Equal(t, http.StatusCreated, Call(t, http.MethodPost, api+"/photos", urls[half:], &later))

	var pending []photo
	require.Equal(t, http.StatusOK, Call(t, http.MethodGet, api+"/photos/pending", nil, &pending))
	pendingIDs := map[string]bool{}
	for _, p := range pending {
		pendingIDs[p.UUID] = true
		assert.Equal(t, "pending", p.Status)
	}
	var laterIDs []string
	for _, p := range later.Photos {
		assert.True(t, pendingIDs[p.UUID], "registered photo %s is listed as pending", p.UUID)
		laterIDs = append(laterIDs, p.UUID)
	}
	var processed struct {
		Results []struct{ UUID, Outcome string }
		Counts  map[string]int
	}
	require.Equal(t, http.StatusAccepted, Call(t, http.MethodPost, api+"/photos/process",
		map[string]any{"uuids": laterIDs}, &processed))
	assert.Equal(t, len(laterIDs), processed.Counts["queued"])

	ids := laterIDs
	for _, p := range created.Photos {
		ids = append(ids, p.UUID)
	}
	final := waitFinal(t, api, ids, 90*time.Second)
	elapsed := time.Since(start)
	t.Logf("%d photos reached a final state in %s (%.1f photos/s)", len(ids), elapsed.Round(time.Millisecond),
		float64(len(ids))/elapsed.Seconds())

	completed := 0
	for _, p := range final {
		if code, isBad := bad[p.URL]; isBad {
			assert.Equal(t, "failed", p.Status, p.URL)
			assert.Equal(t, code, p.FailureCode, p.URL)
			require.NotNil(t, p.Failure, p.URL)
			assert.NotEmpty(t, p.Failure.Message, p.URL)
			continue
		}
		completed++
		require.Equal(t, "completed", p.Status, "%s: %+v", p.URL, p.Failure)
		require.NotNil(t, p.Original, p.URL)
		require.Len(t, p.Thumbnails, 1, p.URL)
		th := p.Thumbnails[0]
		assert.Equal(t, "thumb", th.Rendition)
		assert.Equal(t, "thumbnails/"+p.UUID+"/thumb.jpg", th.URL)
		ow, oh := p.Original.Width, p.Original.Height
		assert.LessOrEqual(t, max(th.Width, th.Height), 320, p.URL)
		if max(ow, oh) > 320 {
			assert.Equal(t, 320, max(th.Width, th.Height), "%s: the long side fills the box", p.URL)
		} else {
			assert.Equal(t, [2]int{ow, oh}, [2]int{th.Width, th.Height}, "%s: never upscaled", p.URL)
		}
		want := float64(ow) / float64(oh) * float64(th.Height)
		assert.LessOrEqual(t, math.Abs(want-float64(th.Width)), 1.0, "%s: aspect kept within a pixel", p.URL)

		// The stored file has the size the row says.
		f, err := os.Open(filepath.Join(env.Storage, th.URL))
		require.NoError(t, err)
		cfg, format, err := image.DecodeConfig(f)
		require.NoError(t, f.Close())
		require.NoError(t, err)
		assert.Equal(t, "jpeg", format)
		assert.Equal(t, [2]int{th.Width, th.Height}, [2]int{cfg.Width, cfg.Height}, p.URL)

		// And the API serves it.
		resp, err := http.Get(api + th.FileURL)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "image/jpeg", resp.Header.Get("Content-Type"))
	}
	assert.Equal(t, len(good), completed)

	// Both resizer replicas did part of the work.
	resizers := env.Procs("resizer")
	require.Len(t, resizers, 2)
	total := 0
	for i, r := range resizers {
		n := r.CountLines("renditions stored")
		t.Logf("resizer %d rendered %d photos", i+1, n)
		assert.Positive(t, n, "resizer replica %d handled none", i+1)
		total += n
	}
	assert.Equal(t, len(good), total, "each good photo was rendered once")

	// Nothing is left pending and logs carry the ids needed to follow a photo.
	require.Equal(t, http.StatusOK, Call(t, http.MethodGet, api+"/photos/pending", nil, &pending))
	assert.Empty(t, pending)
	one := created.Photos[0].UUID
	for _, name := range []string{"downloader", "resizer", "recorder"} {
		n := 0
		for _, p := range env.Procs(name) {
			n += p.CountLines(fmt.Sprintf(`"photo_id":"%s"`, one), `"correlation_id":`)
		}
		assert.Positive(t, n, "%s logged photo %s with a correlation id", name, one)
	}
}
