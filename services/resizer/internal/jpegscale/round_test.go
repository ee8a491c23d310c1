package jpegscale

import (
	"math"
	"testing"
)

// TestRoundHalfUp checks roundHalfUp against the math.Floor expression it
// replaces, around halves, zero and the int32 limits.
func TestRoundHalfUp(t *testing.T) {
	t.Parallel()
	values := []float32{0, -0.5, 0.5, -1.5, 1.5, -0.49999997, 0.49999997, -2.5000002, 254.5, -128.5, 1e9, -1e9, 2147483520}
	for i := -3000; i <= 3000; i++ {
		values = append(values, float32(i)/8, float32(i)/8+1e-3, float32(i)/8-1e-3)
	}
	for _, s := range values {
		want := clip(int32(math.Floor(float64(s)+0.5)) + 128)
		if got := clip(roundHalfUp(s) + 128); got != want {
			t.Errorf("roundHalfUp(%v): pixel %d, want %d", s, got, want)
		}
		if s > -1e8 && s < 1e8 {
			if got, want := roundHalfUp(s), int32(math.Floor(float64(s)+0.5)); got != want {
				t.Errorf("roundHalfUp(%v) = %d, want %d", s, got, want)
			}
		}
	}
}
