package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	_ "image/jpeg"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/photopipe/photopipe/shared/bus"
	"github.com/photopipe/photopipe/shared/envconfig"
	"github.com/photopipe/photopipe/shared/event"
)

// TestScaleOutThreeReplicas is what `docker compose up --scale downloader=3
// --scale resizer=3 --scale recorder=3` does, with native processes: three
// replicas of every worker share their queues. It pushes 1,000 photos,
// SIGKILLs one resizer while they are in flight, and checks that every
// replica did work, that every photo completed with exactly one thumbnail
// (rows and files), and that nothing was dead-lettered or left queued.
//
// It runs in the last pass of the suite only (S3, unless that pass is
// skipped): the point is the shape of a multi-host deployment.
func TestScaleOutThreeReplicas(t *testing.T) {
	env := NewEnv(t)
	if !lastPass() {
		t.Skipf("runs once, in the %s pass", backends[len(backends)-1])
	}
	const photos, replicas = 1000, 3
	// Small images keep the test about the pipeline rather than resizing:
	// 400x300 becomes a 320x240 thumbnail.
	env.Extra["WORKERS"] = "2" // per replica: 3 x 2 handlers per service on 2 cores
	src := ImageServer(t, map[string][]byte{"p.jpg": encodeJPEG(t, 400, 300)})

	env.APIAddr = FreeAddr(t)
	env.Start("ingest-api", "HTTP_ADDR="+env.APIAddr)
	api := "http://" + env.APIAddr
	for _, name := range []string{"recorder", "downloader", "resizer"} {
		for range replicas {
			env.Start(name)
		}
	}
	require.Len(t, env.Procs("resizer"), replicas)

	conn, err := pgx.Connect(t.Context(), env.DB)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	// completed counts completed photos, -1 when the query fails (it runs
	// inside Eventually, where a test cannot stop).
	completed := func() int {
		var n int
		if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM photos WHERE status = 'completed'").Scan(&n); err != nil {
			return -1
		}
		return n
	}

	start := time.Now()
	for sent := 0; sent < photos; sent += 250 {
		urls := make([]string, 250)
		for i := range urls {
			urls[i] = fmt.Sprintf("%s/p.jpg?n=%d", src.URL, sent+i)
		}
		require.Equal(t, http.StatusCreated, Call(t, http.MethodPost, api+"/photos", map[string]any{"urls": urls, "process": true}, nil))
	}

	// Kill a resizer that has done some work while most photos are still
	// on their way: its unacknowledged messages go back to the queue.
	victim := env.Procs("resizer")[0]
	require.Eventually(t, func() bool {
		return victim.CountLines("renditions stored") >= 20 && completed() >= 100
	}, 2*time.Minute, 20*time.Millisecond, "the pipeline never got going")
	before := completed()
	require.NoError(t, victim.cmd.Process.Kill()) // SIGKILL: no shutdown, no acks
	<-victim.done
	victimDid := victim.CountLines("renditions stored")
	t.Logf("SIGKILLed resizer 1 after it stored %d photos, with %d of %d photos completed", victimDid, before, photos)
	require.Less(t, before, photos*8/10, "the kill must happen mid-run to mean anything")

	require.Eventually(t, func() bool { return completed() == photos }, 3*time.Minute, 100*time.Millisecond,
		"only %d of %d photos completed", completed(), photos)
	elapsed := time.Since(start)
	t.Logf("%d photos completed in %s (%.0f photos/s) on %s storage with %d replicas per worker service",
		photos, elapsed.Round(time.Millisecond), photos/elapsed.Seconds(), env.Backend, replicas)

	// Every replica did part of the work.
	for _, c := range []struct{ name, line string }{
		{"downloader", "original stored"},
		{"resizer", "renditions stored"},
		{"recorder", `"event":"ThumbnailCreated"`},
	} {
		total := 0
		for i, p := range env.Procs(c.name) {
			n := p.CountLines(c.line)
			t.Logf("%s %d: %d", c.name, i+1, n)
			assert.Positive(t, n, "%s replica %d did no work", c.name, i+1)
			total += n
		}
		if c.name == "recorder" {
			// The recorder logs only state changes it applies: a duplicate
			// ThumbnailCreated (from the killed resizer's redelivery) is not one.
			assert.Equal(t, photos, total, "each photo completed exactly once")
		} else {
			assert.GreaterOrEqual(t, total, photos, "%s: every photo handled at least once", c.name)
		}
	}

	// Exactly one set of thumbnails per photo, each a whole JPEG of the
	// recorded size in storage.
	var failed, thumbs, thumbPhotos int
	require.NoError(t, conn.QueryRow(t.Context(), "SELECT count(*) FROM photos WHERE status <> 'completed'").Scan(&failed))
	require.NoError(t, conn.QueryRow(t.Context(), "SELECT count(*), count(DISTINCT photo_uuid) FROM photo_thumbnails").Scan(&thumbs, &thumbPhotos))
	assert.Zero(t, failed)
	assert.Equal(t, photos, thumbs, "thumbnail rows")
	assert.Equal(t, photos, thumbPhotos, "photos with a thumbnail")
	rows, err := conn.Query(t.Context(), `SELECT t.url, t.width, t.height, p.uuid::text FROM photo_thumbnails t JOIN photos p ON p.uuid = t.photo_uuid`)
	require.NoError(t, err)
	type thumb struct {
		key, photo string
		w, h       int
	}
	all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (thumb, error) {
		var th thumb
		return th, r.Scan(&th.key, &th.w, &th.h, &th.photo)
	})
	require.NoError(t, err)
	for _, th := range all {
		require.Equal(t, "thumbnails/"+th.photo+"/thumb.jpg", th.key)
		require.Equal(t, [2]int{320, 240}, [2]int{th.w, th.h}, th.key)
		b, err := env.ReadFile(th.key)
		require.NoError(t, err, th.key)
		cfg, format, err := image.DecodeConfig(bytes.NewReader(b))
		require.NoError(t, err, th.key)
		require.Equal(t, "jpeg", format)
		require.Equal(t, [2]int{th.w, th.h}, [2]int{cfg.Width, cfg.Height}, th.key)
	}

	// ingest-api serves the files from the same storage, ranges included.
	first := all[0]
	whole, err := env.ReadFile(first.key)
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, api+"/files/"+first.key, nil)
	require.NoError(t, err)
	req.Header.Set("Range", "bytes=10-99")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	part, err := io.ReadAll(resp.Body)
	require.NoError(t, resp.Body.Close())
	require.NoError(t, err)
	require.Equal(t, http.StatusPartialContent, resp.StatusCode)
	require.Equal(t, fmt.Sprintf("bytes 10-99/%d", len(whole)), resp.Header.Get("Content-Range"))
	require.Equal(t, whole[10:100], part)

	// The kill really orphaned deliveries: the broker redelivered some.
	if n, ok := redeliveries(t, env.AMQP, cfg(t).QueueName(event.TopicPhotoDownloaded, bus.Resizer)); ok {
		t.Logf("the broker redelivered %d messages of the killed resizer", n)
		assert.Positive(t, n, "a SIGKILLed resizer with work in flight leaves unacknowledged messages")
	}

	// Nothing is left in a work queue or a dead-letter queue.
	amqp, err := amqp091.Dial(env.AMQP)
	require.NoError(t, err)
	defer amqp.Close()
	ch, err := amqp.Channel()
	require.NoError(t, err)
	defer ch.Close()
	queues := []string{}
	for _, s := range bus.Subscriptions {
		queues = append(queues, cfg(t).QueueName(s.Topic, s.Service))
	}
	for _, svc := range bus.WorkerServices {
		queues = append(queues, bus.DeadLetterTopic(svc))
	}
	for _, q := range queues {
		info, err := ch.QueueDeclarePassive(q, true, false, false, false, nil)
		require.NoError(t, err, q)
		assert.Zero(t, info.Messages, "messages left in %s", q)
	}
}

// cfg is the bus configuration the services run with (their defaults).
func cfg(t *testing.T) bus.Config {
	t.Helper()
	c := bus.LoadConfig(envconfig.New(func(string) string { return "" }), 1)
	require.NoError(t, c.Validate())
	return c
}

// redeliveries returns how many messages RabbitMQ redelivered from queue,
// from the management API's statistics (refreshed every few seconds); ok
// is false when the API does not answer.
func redeliveries(t *testing.T, amqpURL, queue string) (n int, ok bool) {
	t.Helper()
	api := envOr("PHOTOPIPE_TEST_RABBITMQ_API", "http://guest:guest@127.0.0.1:15672/api")
	u, err := url.Parse(api)
	require.NoError(t, err)
	vhost := amqpURL[strings.LastIndex(amqpURL, "/")+1:]
	u.Path += "/queues/" + vhost + "/" + queue
	u.RawPath = strings.TrimSuffix(u.Path, queue) + url.PathEscape(queue)
	var got struct {
		Stats struct {
			Redeliver int `json:"redeliver"`
		} `json:"message_stats"`
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(u.String())
		if err != nil || resp.StatusCode != http.StatusOK {
			if err == nil {
				_ = resp.Body.Close()
			}
			t.Logf("no RabbitMQ management API at %s (%v): redeliveries not checked", u.Redacted(), err)
			return 0, false
		}
		err = json.NewDecoder(resp.Body).Decode(&got)
		_ = resp.Body.Close()
		require.NoError(t, err)
		if got.Stats.Redeliver > 0 || time.Now().After(deadline) {
			return got.Stats.Redeliver, true
		}
		time.Sleep(500 * time.Millisecond)
	}
}
