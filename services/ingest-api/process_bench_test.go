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
	h := startBenchAPI(b)
	photos := pendingPhotos(b, h, b.N)
	b.ResetTimer()
	requestInParallel(b, http.StatusAccepted, func(client *http.Client, i int) (*http.Response, error) {
		return client.Post(h.base+"/photos/process", "application/json", strings.NewReader(`{"uuids":["`+photos[i]+`"]}`))
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
	h := startBenchAPI(b)
	photos := pendingPhotos(b, h, 1000)
	b.ResetTimer()
	requestInParallel(b, http.StatusOK, func(client *http.Client, i int) (*http.Response, error) {
		return client.Get(h.base + "/photos/" + photos[i%len(photos)])
	})
}

func startBenchAPI(b *testing.B) *harness {
	return startAPI(b, map[string]string{"MAX_PHOTOS_PER_REQUEST": "500", "MAX_BODY_BYTES": "1048576", "LOG_LEVEL": "info"})
}

// pendingPhotos registers n photos (not processed) and returns their ids.
func pendingPhotos(b *testing.B, h *harness, n int) []string {
	var photos []string
	for len(photos) < n {
		urls := make([]string, min(500, n-len(photos)))
		for i := range urls {
			urls[i] = fmt.Sprintf("http://127.0.0.1:9/p/%d.jpg", len(photos)+i)
		}
		photos = append(photos, ids(h.create(jsonList(urls...)))...)
	}
	return photos
}

// requestInParallel sends request i (0, 1, ...) from 16 x GOMAXPROCS
// clients at once until b.N have gone, each expecting status want.
func requestInParallel(b *testing.B, want int, request func(client *http.Client, i int) (*http.Response, error)) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var next atomic.Int64
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := request(client, int(next.Add(1)-1))
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != want {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}
