package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// BenchmarkProcessPhotos: POST /photos/process of one pending photo per
// request, 32 clients at once, through run() with the real Postgres and
// RabbitMQ (the relay publishes every event). With -cpuprofile it shows
// where the API's CPU goes per request; tests/e2e BenchmarkIngestAPILoad
// is the open-loop measure of latency.
func BenchmarkProcessPhotos(b *testing.B) {
	h := startAPI(b, map[string]string{"MAX_PHOTOS_PER_REQUEST": "500", "MAX_BODY_BYTES": "1048576", "LOG_LEVEL": "info"})
	var photos []string
	for len(photos) < b.N {
		urls := make([]string, min(500, b.N-len(photos)))
		for i := range urls {
			urls[i] = fmt.Sprintf("http://127.0.0.1:9/p/%d.jpg", len(photos)+i)
		}
		photos = append(photos, ids(h.create(jsonList(urls...)))...)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var next atomic.Int64
	b.SetParallelism(16) // x GOMAXPROCS clients
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := photos[next.Add(1)-1]
			resp, err := client.Post(h.base+"/photos/process", "application/json", strings.NewReader(`{"uuids":["`+id+`"]}`))
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	// The relay's publishing counts too: the clock stops when the outbox
	// is empty.
	require.Eventually(b, func() bool { return h.outboxRows() == 0 }, 30*time.Second, 2*time.Millisecond)
	b.StopTimer()
}

// BenchmarkGetPhoto: GET /photos/{id} of 1,000 photos in turn, 32 clients
// at once, through run() with the real Postgres: with -cpuprofile, where
// the API's CPU goes per read.
func BenchmarkGetPhoto(b *testing.B) {
	h := startAPI(b, map[string]string{"MAX_PHOTOS_PER_REQUEST": "500", "MAX_BODY_BYTES": "1048576", "LOG_LEVEL": "info"})
	var photos []string
	for len(photos) < 1000 {
		urls := make([]string, 500)
		for i := range urls {
			urls[i] = fmt.Sprintf("http://127.0.0.1:9/p/%d.jpg", len(photos)+i)
		}
		photos = append(photos, ids(h.create(jsonList(urls...)))...)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var next atomic.Int64
	b.SetParallelism(16) // x GOMAXPROCS clients
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Get(h.base + "/photos/" + photos[int(next.Add(1))%len(photos)])
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}
