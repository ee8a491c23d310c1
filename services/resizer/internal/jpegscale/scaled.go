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
	if n == 2 {
		idct2(b, qt, dst, stride)
	} else {
		idct4(b, qt, dst, stride)
	}
}

// idct4 is idctReduced for n = 4, with constant bounds and the sums over u
// and v written out, which spares the loop counters and bounds checks of a
// variable n (the function took a third of a 1/2 decode). The sums are
// added in the same order as the loops added them, so no pixel changes.
func idct4(b *block, qt *block, dst []byte, stride int) {
	m := &reducedCos[4]
	var f, tmp [16]float32
	for v := range 4 {
		for u := range 4 {
			k := v*8 + u
			f[v*4+u] = float32(b[k] * qt[zigOf[k]&(blockSize-1)])
		}
	}
	// Rows: tmp[v][x] = sum_u f[v][u] * m[x][u].
	for v := range 4 {
		r := f[v*4 : v*4+4 : v*4+4]
		for x := range 4 {
			c := m[x*4 : x*4+4 : x*4+4]
			tmp[v*4+x] = r[0]*c[0] + r[1]*c[1] + r[2]*c[2] + r[3]*c[3]
		}
	}
	// Columns: out[y][x] = sum_v m[y][v] * tmp[v][x].
	for y := range 4 {
		c := m[y*4 : y*4+4 : y*4+4]
		row := dst[y*stride : y*stride+4 : y*stride+4]
		for x := range 4 {
			s := c[0]*tmp[x] + c[1]*tmp[4+x] + c[2]*tmp[8+x] + c[3]*tmp[12+x]
			row[x] = clip(roundHalfUp(s) + 128)
		}
	}
}

// roundHalfUp is int32(math.Floor(float64(s) + 0.5)) without the call
// that math.Floor is on amd64 before v2: truncation rounds towards zero,
// so a negative y with a fraction is one too high. Out of the int32 range
// (hostile coefficients only) both give a value that clips to 0.
func roundHalfUp(s float32) int32 {
	y := float64(s) + 0.5
	t := int32(y)
	if float64(t) > y {
		t--
	}
	return t
}

// idct2 is idctReduced for n = 2, written out as idct4 is.
func idct2(b *block, qt *block, dst []byte, stride int) {
	m := &reducedCos[2]
	f0 := float32(b[0] * qt[0])
	f1 := float32(b[1] * qt[1])
	f2 := float32(b[8] * qt[2])
	f3 := float32(b[9] * qt[4])
	// Rows, then columns, as in idct4.
	t0 := f0*m[0] + f1*m[1]
	t1 := f0*m[2] + f1*m[3]
	t2 := f2*m[0] + f3*m[1]
	t3 := f2*m[2] + f3*m[3]
	row0 := dst[0:2:2]
	row0[0] = clip(roundHalfUp(m[0]*t0+m[1]*t2) + 128)
	row0[1] = clip(roundHalfUp(m[0]*t1+m[1]*t3) + 128)
	row1 := dst[stride : stride+2 : stride+2]
	row1[0] = clip(roundHalfUp(m[2]*t0+m[3]*t2) + 128)
	row1[1] = clip(roundHalfUp(m[2]*t1+m[3]*t3) + 128)
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
