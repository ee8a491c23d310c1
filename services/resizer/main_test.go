package main

// Component test: run() against the real RabbitMQ, with its own virtual
// host and storage directory.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/shared/bus"
	"github.com/photopipe/photopipe/shared/envconfig"
	"github.com/photopipe/photopipe/shared/event"
	"github.com/photopipe/photopipe/shared/storage"
	"github.com/photopipe/photopipe/shared/testenv"
)

const raftPDF = "../../../shared/data/raft/Backend_Test_Raft.pdf"

// TestSlowPhotoHoldsOnlyItsOwnWorker: a photo that takes long to render (a
// PDF at 300 dpi here) takes one worker for as long as it takes,
// and the photos behind it go on with the others. With 4 messages
// prefetched per worker (the default before), 3 of them waited for it.
func TestSlowPhotoHoldsOnlyItsOwnWorker(t *testing.T) {
	pdf, err := os.ReadFile(raftPDF)
	require.NoError(t, err)
	var img bytes.Buffer
	require.NoError(t, jpeg.Encode(&img, image.NewGray(image.Rect(0, 0, 8, 8)), nil))

	amqpURL := testenv.RabbitMQ(t)
	env := map[string]string{
		"AMQP_URL":       amqpURL,
		"STORAGE_DIR":    t.TempDir(),
		"WORKERS":        "2",
		"RENDER_WORKERS": "2",
		"PDF_DPI":        "300",
		// PDFium compiled once per machine, as the other tests share it
		// (pdfium.TestCache): compiling takes a minute under -race.
		"PDF_CACHE_DIR": filepath.Join(os.TempDir(), "photopipe-test-pdfium-cache"),
		"LOG_LEVEL":     "error",
	}
	getenv := func(k string) string { return env[k] }
	ctx := testenv.RunUntilCleanup(t, func(ctx context.Context) error { return run(ctx, nil, getenv, io.Discard) })

	r := envconfig.New(getenv)
	cfg, store := bus.LoadConfig(r, 1), storage.LoadConfig(r)
	st, err := storage.Open(ctx, store)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	require.NoError(t, cfg.Declare(ctx, nil))
	pub, err := cfg.NewPublisher(watermill.NopLogger{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })
	events, err := bus.NewEventBus(pub, watermill.NopLogger{})
	require.NoError(t, err)
	downloaded := func(name, contentType string, data []byte) string {
		id := uuid.NewString()
		key := storage.OriginalKey(id, name)
		_, err := st.Put(ctx, key, bytes.NewReader(data))
		require.NoError(t, err)
		require.NoError(t, events.Publish(ctx, &event.PhotoDownloaded{
			Header: event.NewHeader(id, 1), OriginalKey: key, Filename: name, ContentType: contentType,
			Bytes: int64(len(data)), Renditions: []string{"thumb"},
		}))
		return id
	}

	slow := downloaded("raft.pdf", "application/pdf", pdf)
	time.Sleep(200 * time.Millisecond) // the PDF is taken first
	fast := map[string]bool{}
	for i := range 20 {
		fast[downloaded(fmt.Sprintf("%d.jpg", i), "image/jpeg", img.Bytes())] = true
	}
	ch := testenv.AMQPChannel(t, amqpURL)
	queue := cfg.QueueName(event.TopicThumbnailCreated, bus.Recorder)
	start := time.Now()
	var order []string
	for len(order) < len(fast)+1 {
		require.Less(t, time.Since(start), 2*time.Minute, "%d of %d photos rendered", len(order), len(fast)+1)
		d, ok, err := ch.Get(queue, true)
		require.NoError(t, err)
		if !ok {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		var e event.ThumbnailCreated
		require.NoError(t, json.Unmarshal(d.Body, &e))
		order = append(order, e.PhotoID)
		t.Logf("%s: %s", time.Since(start).Round(time.Millisecond), e.PhotoID)
	}
	require.Equal(t, slow, order[len(order)-1], "the PDF is rendered last, after every photo sent after it")
}
