package jpegscale

import (
	"bytes"
	"math"
)

// This file holds what shrink-on-load adds to Go's decoder: reduced
// inverse DCTs and skipping the AC scans of a progressive JPEG.

// zigOf maps the natural order to the zig-zag order: zigOf[unzig[z]] == z.
var zigOf = func() (z [blockSize]int) {
	for i, n := range unzig {
		z[n] = i
	}
	return z
}()

// reducedCos holds, for n = 2 and 4, the basis of the n-point inverse DCT
// that keeps the lowest n of the 8 frequencies: reducedCos[n][x*n+u] is
// C(u)/2 * cos((2x+1)*u*pi/(2n)), the 8-point basis evaluated at the
// centre of output pixel x (a group of 8/n input pixels). It is what
// libjpeg's jidctred.c computes; the truncated spectrum is the low-pass
// filter.
var reducedCos = func() (t [5][16]float32) {
	for _, n := range []int{2, 4} {
		for x := range n {
			for u := range n {
				c := 0.5
				if u == 0 {
					c = 0.5 / math.Sqrt2
				}
				t[n][x*n+u] = float32(c * math.Cos(float64((2*x+1)*u)*math.Pi/float64(2*n)))
			}
		}
	}
	return t
}()

// idctDC turns a dequantized DC coefficient into the block's mean sample:
// the 1x1 inverse DCT is dc/8, rounded, level-shifted and clipped.
func idctDC(dc int32) uint8 {
	v := (dc+4)>>3 + 128
	return clip(v)
}

func clip(v int32) uint8 {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// idctReduced dequantizes the lowest n x n coefficients of b (natural
// order; qt is in zig-zag order) and writes their n x n inverse DCT to dst.
func idctReduced(b *block, qt *block, n int, dst []byte, stride int) {
	m := &reducedCos[n]
	var f, tmp [16]float32
	for v := range n {
		for u := range n {
			k := v*8 + u
			f[v*n+u] = float32(b[k] * qt[zigOf[k]])
		}
	}
	// Rows: tmp[v][x] = sum_u f[v][u] * m[x][u].
	for v := range n {
		for x := range n {
			var s float32
			for u := range n {
				s += f[v*n+u] * m[x*n+u]
			}
			tmp[v*n+x] = s
		}
	}
	// Columns: out[y][x] = sum_v m[y][v] * tmp[v][x].
	for y := range n {
		row := dst[y*stride : y*stride+n]
		for x := range n {
			var s float32
			for v := range n {
				s += m[y*n+v] * tmp[v*n+x]
			}
			row[x] = clip(int32(math.Floor(float64(s)+0.5)) + 128)
		}
	}
}

// skipScan moves past the entropy-coded data of a scan, restart markers
// included, and stops at the marker that follows it, so that decode reads
// that marker next. Stuffed 0xff00 bytes and fill bytes are data.
func (d *decoder) skipScan() error {
	d.bits = bits{}
	d.bytes.nUnreadable = 0
	for {
		if k := bytes.IndexByte(d.bytes.buf[d.bytes.i:d.bytes.j], 0xff); k < 0 {
			d.bytes.i = d.bytes.j
		} else {
			d.bytes.i += k
		}
		x, err := d.readByte()
		if err != nil {
			return err
		}
		if x != 0xff {
			continue
		}
		m, err := d.readByte()
		if err != nil {
			return err
		}
		for m == 0xff {
			if m, err = d.readByte(); err != nil {
				return err
			}
		}
		if m == 0x00 || (rst0Marker <= m && m <= rst7Marker) {
			continue
		}
		// Give back 0xff and the marker: fill keeps the last two bytes
		// of the buffer, so both are still there.
		d.bytes.i -= 2
		return nil
	}
}
