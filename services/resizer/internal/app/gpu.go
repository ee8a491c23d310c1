package app

import (
	"context"
	"math/rand/v2"
	"time"
)

// Simulated GPU time, as the Retail Pulse specification asks: each image
// takes a random 0.1 to 0.4 s more, to make batch behaviour realistic in
// demos and load tests. Off unless SIMULATE_GPU_TIME is set.
const (
	gpuMin = 100 * time.Millisecond
	gpuMax = 400 * time.Millisecond
)

// WithSimulatedGPU makes every image wait sleep(d) for a random d in
// [0.1 s, 0.4 s]; sleep is time-based in production and a fake in tests.
func (r *Resizer) WithSimulatedGPU(sleep func(ctx context.Context, d time.Duration) error) *Resizer {
	r.gpuSleep = sleep
	return r
}

func (r *Resizer) simulateGPU(ctx context.Context) error {
	if r.gpuSleep == nil {
		return nil
	}
	return r.gpuSleep(ctx, gpuMin+rand.N(gpuMax-gpuMin+1))
}

// Sleep waits d or until ctx ends.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
