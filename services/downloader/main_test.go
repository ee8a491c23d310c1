package main

// Component test: run() against the real RabbitMQ, with its own virtual
// host and storage directory, sources on a loopback HTTP server.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/shared/bus"
	"github.com/photopipe/photopipe/shared/envconfig"
	"github.com/photopipe/photopipe/shared/event"
	"github.com/photopipe/photopipe/shared/testenv"
)

// TestSlowSourceHoldsOnlyItsOwnWorker: a source that answers slowly takes
// one worker for as long as it takes, and every other photo goes on with the
// others. With messages prefetched per worker (it was 32), those the broker
// had pushed to the slow photo's worker waited behind it: a chaos run saw 35
// slow sources hold 190 other photos for 1 to 6.5 minutes.
func TestSlowSourceHoldsOnlyItsOwnWorker(t *testing.T) {
	var img bytes.Buffer
	require.NoError(t, jpeg.Encode(&img, image.NewGray(image.Rect(0, 0, 8, 8)), nil))
	release := make(chan struct{})
	var releaseOnce sync.Once
	free := func() { releaseOnce.Do(func() { close(release) }) }
	slowStarted := make(chan struct{}, 1)
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow.jpg" {
			select {
			case slowStarted <- struct{}{}:
			default:
			}
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "image/jpeg")
		_, _ = w.Write(img.Bytes())
	}))
	t.Cleanup(src.Close)

	amqpURL := testenv.RabbitMQ(t)
	env := map[string]string{
		"AMQP_URL":                  amqpURL,
		"STORAGE_DIR":               t.TempDir(),
		"WORKERS":                   "2",
		"DOWNLOAD_ALLOWED_NETWORKS": "127.0.0.0/8",
		"DOWNLOAD_TIMEOUT":          "5m",
		"DOWNLOAD_HEADER_TIMEOUT":   "5m",
		"LOG_LEVEL":                 "error",
	}
	ctx := testenv.RunUntilCleanup(t, func(ctx context.Context) error {
		return run(ctx, nil, func(k string) string { return env[k] }, io.Discard)
	})
	t.Cleanup(free) // before run's cleanup: the slow download returns, and run with it

	cfg := bus.LoadConfig(envconfig.New(func(k string) string { return env[k] }), 1)
	require.NoError(t, cfg.Declare(ctx, nil))
	pub, err := cfg.NewPublisher(watermill.NopLogger{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })
	events, err := bus.NewEventBus(pub, watermill.NopLogger{})
	require.NoError(t, err)
	request := func(url string) string {
		id := uuid.NewString()
		require.NoError(t, events.Publish(ctx, &event.PhotoRequested{
			Header: event.NewHeader(id, 1), URL: url, Renditions: []string{"thumb"},
		}))
		return id
	}
	// downloaded reads the resizer's queue until want photos have arrived.
	ch := testenv.AMQPChannel(t, amqpURL)
	queue := cfg.QueueName(event.TopicPhotoDownloaded, bus.Resizer)
	got := map[string]bool{}
	downloaded := func(want map[string]bool, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			missing := 0
			for id := range want {
				if !got[id] {
					missing++
				}
			}
			if missing == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d photos not downloaded within %s", missing, len(want), within)
			}
			d, ok, err := ch.Get(queue, true)
			require.NoError(t, err)
			if !ok {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			var e event.PhotoDownloaded
			require.NoError(t, json.Unmarshal(d.Body, &e))
			got[e.PhotoID] = true
		}
	}

	slow := request(src.URL + "/slow.jpg")
	select {
	case <-slowStarted:
	case <-time.After(30 * time.Second):
		t.Fatal("the slow source was never asked")
	}
	fast := map[string]bool{}
	for i := range 20 {
		fast[request(fmt.Sprintf("%s/fast-%d.jpg", src.URL, i))] = true
	}
	downloaded(fast, 30*time.Second)
	require.False(t, got[slow], "the slow photo cannot be downloaded yet")

	free()
	downloaded(map[string]bool{slow: true}, 30*time.Second)
}
