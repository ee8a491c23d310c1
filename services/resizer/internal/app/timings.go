package app

import (
	"context"
	"log/slog"

	"github.com/photopipe/photopipe/services/resizer/internal/imaging"
)

// WithTimings makes every rendered image report how long it spent
// decoding, resizing and encoding to observe (for metrics).
func (r *Resizer) WithTimings(observe func(imaging.Timings)) *Resizer {
	r.timings = observe
	return r
}

// observeTimings logs the stages of one image at debug level and passes
// them to the observer, if any.
func (r *Resizer) observeTimings(ctx context.Context, res *imaging.Result) {
	t := res.Timings
	r.log.DebugContext(ctx, "image rendered",
		slog.Int("scale", res.Scale),
		slog.Duration("decode", t.Decode), slog.Duration("resize", t.Resize), slog.Duration("encode", t.Encode))
	if r.timings != nil {
		r.timings(t)
	}
}
