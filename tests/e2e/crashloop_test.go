package e2e

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hugePNG is a tiny file that decodes to w*h*4 bytes of pixels.
func hugePNG(tb testing.TB, w, h int) []byte {
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = 200
	}
	var b bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	require.NoError(tb, enc.Encode(&b, img))
	_ = color.Gray{}
	return b.Bytes()
}

// restartLoop runs a service over and over, as a supervisor (systemd,
// Kubernetes, compose restart: always) would, until the test ends. Every
// run is limited to limitBytes of address space with prlimit.
type restartLoop struct {
	starts atomic.Int32
	mu     sync.Mutex
	out    bytes.Buffer
}

func (l *restartLoop) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.out.Write(b)
}

func (l *restartLoop) output() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.out.String()
}

func (e *Env) runRestartLoop(t *testing.T, name string, limitBytes int64, extra ...string) *restartLoop {
	t.Helper()
	if _, err := exec.LookPath("prlimit"); err != nil {
		t.Skip("prlimit (util-linux) is not installed")
	}
	ctx, cancel := context.WithCancel(context.Background())
	loop := &restartLoop{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			loop.starts.Add(1)
			cmd := exec.CommandContext(ctx, "prlimit", "--as="+strconv.FormatInt(limitBytes, 10), "--", filepath.Join(binDir, name))
			cmd.Env = append(os.Environ(), "AMQP_URL="+e.AMQP, "DATABASE_URL="+e.DB, "STORAGE_DIR="+e.Storage, "LOG_FORMAT=json")
			for k, v := range e.Extra {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			cmd.Env = append(cmd.Env, extra...)
			cmd.Stdout, cmd.Stderr = loop, loop
			_ = cmd.Run()
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		if t.Failed() {
			t.Logf("---- %s restart loop output (last 4 KB) ----\n%s", name, tail(loop.output(), 4096))
		}
	})
	return loop
}

// TestCrashLoopIsContained feeds a memory-limited resizer, restarted
// whenever it dies, one image that kills it among normal ones: the killer
// reaches the dead-letter queue after MAX_DELIVERIES deliveries, and every
// other photo completes.
func TestCrashLoopIsContained(t *testing.T) {
	env := NewEnv(t)
	files := map[string][]byte{"bomb.png": hugePNG(t, 16000, 16000)}
	for i := range 8 {
		files["ok"+strconv.Itoa(i)+".jpg"] = encodeJPEG(t, 400+i*10, 300)
	}
	src := ImageServer(t, files)
	api := "http://" + FreeAddr(t)
	env.APIAddr = api[len("http://"):]
	env.Start("ingest-api", "HTTP_ADDR="+env.APIAddr)
	env.Start("recorder")
	env.Start("downloader")
	// About 1.3 GB of address space is what the Go runtime reserves at
	// start; decoding 256 MP of gray needs far more than the rest.
	loop := env.runRestartLoop(t, "resizer", 1_500_000_000, "WORKERS=1", "AMQP_PREFETCH=1", "MAX_DELIVERIES=3", "MAX_PIXELS=1000000000")

	urls := []string{src.URL + "/bomb.png"}
	for i := range 8 {
		urls = append(urls, src.URL+"/ok"+strconv.Itoa(i)+".jpg")
	}
	var created struct{ Photos []struct{ UUID, URL string } }
	require.Equal(t, http.StatusCreated, Call(t, http.MethodPost, api+"/photos", map[string]any{"urls": urls, "process": true}, &created))
	bomb := created.Photos[0].UUID

	var others []string
	for _, p := range created.Photos[1:] {
		others = append(others, p.UUID)
	}
	final := waitFinal(t, api, others, 3*time.Minute)
	for _, id := range others {
		assert.Equal(t, "completed", final[id].Status)
	}

	var list dlList
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, http.StatusOK, Call(t, http.MethodGet, api+"/admin/dead-letters/resizer", nil, &list))
		assert.Len(c, list.Entries, 1)
	}, 3*time.Minute, 500*time.Millisecond)
	assert.Equal(t, bomb, list.Entries[0].PhotoID)
	assert.Contains(t, list.Entries[0].Reason, "without being acknowledged")
	assert.GreaterOrEqual(t, loop.starts.Load(), int32(4), "three crashes, then a resizer that lives")
	t.Logf("resizer started %d times", loop.starts.Load())

	var p deadLetterPhoto
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, http.StatusOK, Call(t, http.MethodGet, api+"/photos/"+bomb, nil, &p))
		assert.NotNil(c, p.DeadLetter)
	}, 30*time.Second, 200*time.Millisecond)
	assert.Equal(t, "resizer", p.DeadLetter.Service)
}
