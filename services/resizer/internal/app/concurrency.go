package app

import (
	"context"

	"golang.org/x/sync/semaphore"
)

// WithConcurrency lets at most n photos be rendered at once: decoded,
// resized and encoded (with the simulated GPU time, if any), or a PDF's
// pages rendered and stored. Handle calls beyond n wait for a slot. An
// image's renditions are stored, and its event published, after its slot
// is released, so a replica that runs more handlers than n keeps n CPUs
// rendering while the others wait for the disk (fsync) and the broker's
// confirm. Without it, every call renders at once.
func (r *Resizer) WithConcurrency(n int) *Resizer {
	r.slots = semaphore.NewWeighted(int64(n))
	return r
}

// slot is one rendering slot, held from acquire until release.
type slot struct {
	sem  *semaphore.Weighted
	held bool
}

// acquire waits for a rendering slot, or until ctx ends.
func (r *Resizer) acquire(ctx context.Context) (*slot, error) {
	if r.slots == nil {
		return &slot{}, nil
	}
	if err := r.slots.Acquire(ctx, 1); err != nil {
		return nil, err
	}
	return &slot{sem: r.slots, held: true}, nil
}

// release gives the slot back; releasing it again does nothing.
func (s *slot) release() {
	if s.held {
		s.held = false
		s.sem.Release(1)
	}
}
