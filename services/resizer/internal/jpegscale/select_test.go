package jpegscale

import (
	mbits "math/bits"
	"math/rand/v2"
	"testing"
)

// selectBit agrees with clearing the lowest set bits one at a time, on
// random words (sparse, dense, all ones) and every rank they allow.
func TestSelectBit(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200000; i++ {
		x := r.Uint64() & r.Uint64()
		if i%3 == 0 {
			x = r.Uint64()
		}
		if i%7 == 0 {
			x = ^uint64(0)
		}
		n := mbits.OnesCount64(x)
		if n == 0 {
			continue
		}
		k := uint64(r.IntN(n))
		y := x
		for j := uint64(0); j < k; j++ {
			y &= y - 1
		}
		if got, want := selectBit(x, k), mbits.TrailingZeros64(y); got != want {
			t.Fatalf("selectBit(%x, %d) = %d, want %d", x, k, got, want)
		}
	}
}
