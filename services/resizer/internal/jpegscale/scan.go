// Copyright 2012 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package jpegscale

import (
	"image"
	mbits "math/bits"
)

// makeImg allocates and initializes the destination image.
func (d *decoder) makeImg(mxx, myy int) {
	bs := d.bs
	sw, sh := ScaledSize(d.width, d.height, d.scale)
	if d.nComp == 1 {
		m := image.NewGray(image.Rect(0, 0, bs*mxx, bs*myy))
		d.img1 = m.SubImage(image.Rect(0, 0, sw, sh)).(*image.Gray)
		return
	}

	h0 := d.comp[0].h
	v0 := d.comp[0].v
	hRatio := h0 / d.comp[1].h
	vRatio := v0 / d.comp[1].v
	var subsampleRatio image.YCbCrSubsampleRatio
	switch hRatio<<4 | vRatio {
	case 0x11:
		subsampleRatio = image.YCbCrSubsampleRatio444
	case 0x12:
		subsampleRatio = image.YCbCrSubsampleRatio440
	case 0x21:
		subsampleRatio = image.YCbCrSubsampleRatio422
	case 0x22:
		subsampleRatio = image.YCbCrSubsampleRatio420
	case 0x41:
		subsampleRatio = image.YCbCrSubsampleRatio411
	case 0x42:
		subsampleRatio = image.YCbCrSubsampleRatio410
	default:
		panic("unreachable")
	}
	m := image.NewYCbCr(image.Rect(0, 0, bs*h0*mxx, bs*v0*myy), subsampleRatio)
	d.img3 = m.SubImage(image.Rect(0, 0, sw, sh)).(*image.YCbCr)

	if d.nComp == 4 {
		h3, v3 := d.comp[3].h, d.comp[3].v
		d.blackPix = make([]byte, bs*h3*mxx*bs*v3*myy)
		d.blackStride = bs * h3 * mxx
	}
}

// Specified in section B.2.3.
func (d *decoder) processSOS(n int) error {
	if d.nComp == 0 {
		return FormatError("missing SOF marker")
	}
	if n < 6 || 4+2*d.nComp < n || n%2 != 0 {
		return FormatError("SOS has wrong length")
	}
	if err := d.readFull(d.tmp[:n]); err != nil {
		return err
	}
	nComp := int(d.tmp[0])
	if n != 4+2*nComp {
		return FormatError("SOS length inconsistent with number of components")
	}
	var scan [maxComponents]scanComponent
	totalHV := 0
	for i := 0; i < nComp; i++ {
		cs := d.tmp[1+2*i] // Component selector.
		compIndex := -1
		for j, comp := range d.comp[:d.nComp] {
			if cs == comp.c {
				compIndex = j
			}
		}
		if compIndex < 0 {
			return FormatError("unknown component selector")
		}
		scan[i].compIndex = uint8(compIndex)
		// Section B.2.3 states that "the value of Cs_j shall be different from
		// the values of Cs_1 through Cs_(j-1)". Since we have previously
		// verified that a frame's component identifiers (C_i values in section
		// B.2.2) are unique, it suffices to check that the implicit indexes
		// into d.comp are unique.
		for j := 0; j < i; j++ {
			if scan[i].compIndex == scan[j].compIndex {
				return FormatError("repeated component selector")
			}
		}
		totalHV += d.comp[compIndex].h * d.comp[compIndex].v

		// The baseline t <= 1 restriction is specified in table B.3.
		scan[i].td = d.tmp[2+2*i] >> 4
		if t := scan[i].td; t > maxTh || (d.baseline && t > 1) {
			return FormatError("bad Td value")
		}
		scan[i].ta = d.tmp[2+2*i] & 0x0f
		if t := scan[i].ta; t > maxTh || (d.baseline && t > 1) {
			return FormatError("bad Ta value")
		}
	}
	// Section B.2.3 states that if there is more than one component then the
	// total H*V values in a scan must be <= 10.
	if d.nComp > 1 && totalHV > 10 {
		return FormatError("total sampling factors too large")
	}

	// zigStart and zigEnd are the spectral selection bounds.
	// ah and al are the successive approximation high and low values.
	// The spec calls these values Ss, Se, Ah and Al.
	//
	// For progressive JPEGs, these are the two more-or-less independent
	// aspects of progression. Spectral selection progression is when not
	// all of a block's 64 DCT coefficients are transmitted in one pass.
	// For example, three passes could transmit coefficient 0 (the DC
	// component), coefficients 1-5, and coefficients 6-63, in zig-zag
	// order. Successive approximation is when not all of the bits of a
	// band of coefficients are transmitted in one pass. For example,
	// three passes could transmit the 6 most significant bits, followed
	// by the second-least significant bit, followed by the least
	// significant bit.
	//
	// For sequential JPEGs, these parameters are hard-coded to 0/63/0/0, as
	// per table B.3.
	zigStart, zigEnd, ah, al := int32(0), int32(blockSize-1), uint32(0), uint32(0)
	if d.progressive {
		zigStart = int32(d.tmp[1+2*nComp])
		zigEnd = int32(d.tmp[2+2*nComp])
		ah = uint32(d.tmp[3+2*nComp] >> 4)
		al = uint32(d.tmp[3+2*nComp] & 0x0f)
		if (zigStart == 0 && zigEnd != 0) || zigStart > zigEnd || blockSize <= zigEnd {
			return FormatError("bad spectral selection bounds")
		}
		if zigStart != 0 && nComp != 1 {
			return FormatError("progressive AC coefficients for more than one component")
		}
		if ah != 0 && ah != al+1 {
			return FormatError("bad successive approximation values")
		}
	}

	// mxx and myy are the number of MCUs (Minimum Coded Units) in the image.
	h0, v0 := d.comp[0].h, d.comp[0].v // The h and v values from the Y components.
	mxx := (d.width + 8*h0 - 1) / (8 * h0)
	myy := (d.height + 8*v0 - 1) / (8 * v0)
	if d.img1 == nil && d.img3 == nil {
		d.makeImg(mxx, myy)
	}
	dcOnly := d.progressive && d.scale == 8
	if dcOnly && zigStart > 0 {
		// At 1/8 only the DC coefficients count: skip the AC scan's
		// entropy-coded data without decoding it.
		return d.skipScan()
	}
	// A scan decoded at a reduced size only keeps the lowest bs x bs
	// coefficients of each block (keepCoefficients); the others are read
	// past. (A progressive scan notes which of them are non-zero, in
	// progNZ: refinement scans need to know.)
	skipAC := d.bs < 8
	// A sequential scan at 1/8 keeps no AC coefficient: skipACs reads
	// past them.
	dcOnlySeq := !d.progressive && d.keepZig == 1
	if d.progressive {
		for i := 0; i < nComp; i++ {
			compIndex := scan[i].compIndex
			n := mxx * myy * d.comp[compIndex].h * d.comp[compIndex].v
			if dcOnly && d.progDC[compIndex] == nil {
				d.progDC[compIndex] = make([]int32, n)
			} else if !dcOnly && d.progCoeffs[compIndex] == nil {
				// The padding lets the last block be seen as a whole
				// block (progBlock).
				d.progCoeffs[compIndex] = make([]int32, n*d.progStride+blockSize-d.progStride)
				d.progNZ[compIndex] = make([]uint64, n)
			}
		}
	}

	d.bits = bits{}
	if d.progressive && zigStart > 0 {
		c := scan[0]
		return d.processACScan(int(c.compIndex), &d.huff[acTable][c.ta], mxx, myy, zigStart, zigEnd, ah, al, skipAC)
	}
	if d.progressive {
		return d.processDCScan(scan[:nComp], mxx, myy, ah, al)
	}
	mcu, expectedRST := 0, uint8(rst0Marker)
	var (
		// b is the decoded coefficients, in natural (not zig-zag) order.
		b  block
		dc [maxComponents]int32
		// bx and by are the location of the current block, in units of 8x8
		// blocks: the third block in the first row has (bx, by) = (2, 0).
		bx, by     int
		blockCount int
		// coded counts the blocks of a scan of one component.
		coded int
	)
	for my := 0; my < myy; my++ {
		for mx := 0; mx < mxx; mx++ {
			for i := 0; i < nComp; i++ {
				compIndex := scan[i].compIndex
				hi := d.comp[compIndex].h
				vi := d.comp[compIndex].v
				for j := 0; j < hi*vi; j++ {
					// The blocks are traversed one MCU at a time. In an
					// interleaved scan (nComp > 1) each component's h x v
					// blocks of the MCU come in raster order: the Y blocks
					// of a 32x16 4:2:0 image go
					//	0 1 4 5
					//	2 3 6 7
					// A scan of one component (a grayscale JPEG, or one
					// with a scan per component) goes over that component's
					// blocks left to right, top to bottom, and has no data
					// for those outside the image at the pixel level,
					// though inside it at the MCU level. (Progressive
					// scans: processDCScan and processACScan.)
					if nComp != 1 {
						bx = hi*mx + j%hi
						by = vi*my + j/hi
					} else {
						q := mxx * hi
						bx = blockCount % q
						by = blockCount / q
						blockCount++
						if bx*8 >= d.width || by*8 >= d.height {
							continue
						}
						// In a scan of one component, the restart interval
						// counts its blocks, not the frame's MCUs (section
						// F.2.2.4): with 4:2:0, four luma blocks per MCU.
						// (Go's image/jpeg counts MCUs.)
						if d.ri > 0 && coded > 0 && coded%d.ri == 0 {
							if err := d.restart(&expectedRST, &dc); err != nil {
								return err
							}
						}
						coded++
					}

					if skipAC {
						// reconstructBlock reads only the kept
						// coefficients: clearing the other 48 to 63 of
						// them would be wasted.
						for _, k := range d.keepNat {
							b[k] = 0
						}
					} else {
						b = block{}
					}

					// Decode the DC coefficient, as specified in section F.2.2.1.
					dcDelta, err := d.decodeDC(&d.huff[dcTable][scan[i].td])
					if err != nil {
						return err
					}
					dc[compIndex] += dcDelta
					b[0] = dc[compIndex]
					if d.eobRun > 0 {
						// An end-of-band run (EOBn) belongs in
						// progressive scans; in a sequential one it skips
						// the ACs of as many blocks, as in image/jpeg,
						// whose output this decoder matches.
						d.eobRun--
					} else if dcOnlySeq {
						if err := d.skipACs(&d.huff[acTable][scan[i].ta], 1, blockSize-1); err != nil {
							return err
						}
					} else {
						// Decode the AC coefficients, as specified in section F.2.2.2.
						if err := d.decodeACs(&b, nil, &d.huff[acTable][scan[i].ta], 1, blockSize-1, 0, skipAC); err != nil {
							return err
						}
					}
					if err := d.reconstructBlock(&b, bx, by, int(compIndex)); err != nil {
						return err
					}
				} // for j
			} // for i
			mcu++
			// An interleaved scan restarts every d.ri MCUs; a scan of one
			// component every d.ri blocks (above).
			if nComp != 1 && d.ri > 0 && mcu%d.ri == 0 && mcu < mxx*myy {
				if err := d.restart(&expectedRST, &dc); err != nil {
					return err
				}
			}
		} // for mx
	} // for my

	return nil
}

// scanComponent is a component of a scan, with its Huffman tables.
type scanComponent struct {
	compIndex uint8
	td        uint8 // DC table selector.
	ta        uint8 // AC table selector.
}

// processDCScan decodes a progressive scan of DC coefficients (a first
// scan, or a refinement when ah != 0) into progDC at 1/8, where nothing
// else is kept, or into the blocks (progBlock). It does what processSOS's
// general loop does for such a scan with a plain loop over a list of each
// MCU's blocks: at 1/8 the DC scans are all the decoding, and that loop,
// which copies each coefficient through a block of its own and divides to
// find it, took two thirds of it.
func (d *decoder) processDCScan(scan []scanComponent, mxx, myy int, ah, al uint32) error {
	// dst[c][i*step] is the DC coefficient of component c's block i.
	var dst [maxComponents][]int32
	step := d.progStride
	for _, c := range scan {
		if d.scale == 8 {
			dst[c.compIndex], step = d.progDC[c.compIndex], 1
		} else {
			dst[c.compIndex] = d.progCoeffs[c.compIndex]
		}
	}
	// blocks lists the blocks of a unit of the scan: in unit (ux, uy),
	// each is block uy*rows+ux*cols+off of its component c. In an interleaved
	// scan a unit is an MCU (each component's h x v blocks in raster
	// order); in a scan of one component it is one block, and only those
	// inside the image are coded. The restart interval counts units
	// (F.2.2.4).
	type unitBlock struct {
		c, td           uint8
		rows, cols, off int
	}
	var unit [10]unitBlock // processSOS checks: at most 10 blocks an MCU
	n, nx, ny := 0, mxx, myy
	if len(scan) == 1 {
		c := scan[0]
		q := mxx * d.comp[c.compIndex].h
		unit[0] = unitBlock{c: c.compIndex, td: c.td, rows: q, cols: 1}
		n = 1
		nx = min(q, (d.width+7)/8)
		ny = min(myy*d.comp[c.compIndex].v, (d.height+7)/8)
	} else {
		for _, c := range scan {
			hi, vi := d.comp[c.compIndex].h, d.comp[c.compIndex].v
			q := mxx * hi
			for y := range vi {
				for x := range hi {
					unit[n] = unitBlock{c: c.compIndex, td: c.td, rows: vi * q, cols: hi, off: y*q + x}
					n++
				}
			}
		}
	}
	blocks := unit[:n]
	expectedRST := uint8(rst0Marker)
	var dc [maxComponents]int32
	untilRestart := d.ri
	for uy := 0; uy < ny; uy++ {
		for ux := 0; ux < nx; ux++ {
			for _, b := range blocks {
				p := &dst[b.c][(uy*b.rows+ux*b.cols+b.off)*step]
				if ah != 0 {
					bit, err := d.decodeBit()
					if err != nil {
						return err
					}
					if bit {
						*p |= 1 << al
					}
					continue
				}
				delta, err := d.decodeDC(&d.huff[dcTable][b.td])
				if err != nil {
					return err
				}
				dc[b.c] += delta
				*p = dc[b.c] << al
			}
			if d.ri > 0 {
				if untilRestart--; untilRestart == 0 && (uy+1 < ny || ux+1 < nx) {
					if err := d.restart(&expectedRST, &dc); err != nil {
						return err
					}
					untilRestart = d.ri
				}
			}
		}
	}
	return nil
}

// processACScan decodes a progressive scan of AC coefficients, of one
// component (processSOS checks): the blocks inside the image, in raster
// order, each decoded in place (progBlock) with its non-zero mask. It does
// what processSOS's general loop does for such a scan, without walking
// MCUs: no division nor per-MCU test for each block (a third of the time
// the loop took on its own at 1/4).
func (d *decoder) processACScan(ci int, h *huffman, mxx, myy int, zigStart, zigEnd int32, ah, al uint32, skipAC bool) error {
	// q blocks a row are stored; those at or past the image's right or
	// bottom edge (in pixels of the full image, as processSOS tests) are
	// not coded.
	q := mxx * d.comp[ci].h
	cols := min(q, (d.width+7)/8)
	rows := min(myy*d.comp[ci].v, (d.height+7)/8)
	coeffs, nzs, stride := d.progCoeffs[ci], d.progNZ[ci], d.progStride
	expectedRST := uint8(rst0Marker)
	var dc [maxComponents]int32
	// The restart interval counts the component's blocks (F.2.2.4).
	untilRestart := d.ri
	for by := 0; by < rows; by++ {
		for bx := 0; bx < cols; bx++ {
			i := by*q + bx
			b := (*block)(coeffs[i*stride : i*stride+blockSize])
			switch {
			case ah != 0:
				if err := d.refine(b, &nzs[i], h, zigStart, zigEnd, 1<<al); err != nil {
					return err
				}
			case d.eobRun > 0:
				d.eobRun--
			default:
				if err := d.decodeACs(b, &nzs[i], h, zigStart, zigEnd, al, skipAC); err != nil {
					return err
				}
			}
			if d.ri > 0 {
				if untilRestart--; untilRestart == 0 && (by+1 < rows || bx+1 < cols) {
					if err := d.restart(&expectedRST, &dc); err != nil {
						return err
					}
					untilRestart = d.ri
				}
			}
		}
	}
	return nil
}

// keepCoefficients sets, once the frame header has said whether the JPEG is
// progressive, which coefficients the decode keeps (keepZig, keepNat) and
// where a progressive one keeps them between scans (zigIdx, progStride).
func (d *decoder) keepCoefficients() {
	d.keepZig, d.keepNat = 0, d.keepNat[:0]
	d.zigIdx, d.progStride = unzig, blockSize
	for z, k := range unzig {
		if k%8 < d.bs && k/8 < d.bs {
			d.keepZig |= 1 << z
			d.keepNat = append(d.keepNat, k)
			if d.progressive && d.bs < 8 {
				d.zigIdx[z] = k/8*d.bs + k%8
			}
		}
	}
	if d.progressive && d.bs < 8 {
		d.progStride = d.bs * d.bs
	}
}

// restart reads past the restart marker that comes next, expected, and
// resets the decoder's state, as sections F.2.1.3.1 and G.1.2.2 say. For
// well-formed input the marker follows at once; for corrupt input, findRST
// tries to resynchronize.
func (d *decoder) restart(expected *uint8, dc *[maxComponents]int32) error {
	if err := d.readFull(d.tmp[:2]); err != nil {
		return err
	} else if d.tmp[0] != 0xff || d.tmp[1] != *expected {
		if err := d.findRST(*expected); err != nil {
			return err
		}
	}
	*expected++
	if *expected == rst7Marker+1 {
		*expected = rst0Marker
	}
	d.bits = bits{}
	*dc = [maxComponents]int32{}
	d.eobRun = 0
	return nil
}

// refine decodes a successive approximation refinement block, as specified in
// section G.1.2. *nz marks the non-zero AC coefficients of b (progNZ).
func (d *decoder) refine(b *block, nz *uint64, h *huffman, zigStart, zigEnd, delta int32) error {
	// Refining a DC component is trivial.
	if zigStart == 0 {
		if zigEnd != 0 {
			panic("unreachable")
		}
		bit, err := d.decodeBit()
		if err != nil {
			return err
		}
		if bit {
			b[0] |= delta
		}
		return nil
	}

	// Refining AC components is more complicated; see sections G.1.2.2 and G.1.2.3.
	zig := zigStart
	if d.eobRun == 0 {
	loop:
		for ; zig <= zigEnd; zig++ {
			z := int32(0)
			// sign is the sign of a newly non-zero coefficient when the
			// look-up read its bit, 0 when not.
			value, sign, err := d.decodeRefineSymbol(h)
			if err != nil {
				return err
			}
			val0 := value >> 4
			val1 := value & 0x0f

			switch val1 {
			case 0:
				if val0 != 0x0f {
					if err := d.readEOBRun(val0); err != nil {
						return err
					}
					break loop
				}
			case 1:
				if sign != 0 {
					z = sign * delta
					break
				}
				z = delta
				bit, err := d.decodeBit()
				if err != nil {
					return err
				}
				if !bit {
					z = -z
				}
			default:
				return FormatError("unexpected Huffman code")
			}

			zig, err = d.refineNonZeroes(b, *nz, zig, zigEnd, int32(val0), delta)
			if err != nil {
				return err
			}
			if zig > zigEnd {
				return FormatError("too many coefficients")
			}
			if z != 0 {
				*nz |= 1 << uint(zig&(blockSize-1))
				if d.keepZig>>uint(zig&(blockSize-1))&1 != 0 {
					b[d.zigIdx[zig&(blockSize-1)]&(blockSize-1)] = z
				}
			}
		}
	}
	if d.eobRun > 0 {
		d.eobRun--
		if _, err := d.refineNonZeroes(b, *nz, zig, zigEnd, -1, delta); err != nil {
			return err
		}
	}
	return nil
}

// decodeRefineSymbol decodes the next symbol of an AC refinement scan
// (section G.1.2.3) and, when h.ac has it, the bit after it: its EXTEND
// of 1 bit, -1 or 1, is the sign of a coefficient that becomes non-zero
// (sign is 0 when that bit, if any, was not read).
func (d *decoder) decodeRefineSymbol(h *huffman) (sym uint8, sign int32, err error) {
	if d.bits.n < 32 {
		d.refillFast()
	}
	if n := d.bits.n; n >= 32 {
		if e := h.ac[d.bits.a>>uint32(n-acLookahead)&(1<<acLookahead-1)]; e&acValue != 0 {
			d.bits.n -= e & acBits
			return uint8(e >> 8), e >> 16, nil
		}
	}
	sym, err = d.decodeHuffman(h)
	return sym, 0, err
}

// refineNonZeroes refines the non-zero coefficients of b from zig-zag
// index zig on, in zig-zag order, up to its (nz+1)th zero coefficient, and
// returns that zero's index; when nz < 0, or when fewer zeros are left, it
// refines up to zigEnd and returns zigEnd+1. m marks the non-zero AC
// coefficients (progNZ). Only the coefficients that d.keepZig keeps are
// updated: the others' correction bits are read past.
//
// The masks find the coefficients without reading the block, so a block
// with nothing to refine in the band (most blocks of a late scan, in
// end-of-band runs) is not touched at all, and the correction bits are
// taken from the accumulator many at a time.
func (d *decoder) refineNonZeroes(b *block, m uint64, zig, zigEnd, nz, delta int32) (int32, error) {
	// zig and zigEnd are in [1, 63] (processSOS checks zigEnd).
	band := ^uint64(0) >> uint(63-zigEnd&(blockSize-1)) &^ (1<<uint(zig&(blockSize-1)) - 1)
	stop := zigEnd + 1
	if nz >= 0 {
		if zeros := ^m & band; int(nz) < mbits.OnesCount64(zeros) {
			stop = int32(selectBit(zeros, uint64(nz)))
		}
	}
	// One correction bit for each non-zero coefficient before stop.
	todo := m & band & (1<<uint(stop&(blockSize-1)) - 1)
	if stop >= blockSize {
		todo = m & band
	}
	for todo != 0 {
		if d.bits.n < 32 {
			d.refillFast()
		}
		if d.bits.n == 0 {
			if err := d.ensureNBits(1); err != nil {
				return 0, err
			}
		}
		// These: the lowest c coefficients of todo, c as many as the
		// accumulator has bits for.
		these, c := todo, int32(mbits.OnesCount64(todo))
		if c > d.bits.n {
			c, these = d.bits.n, 0
			for x, i := todo, int32(0); i < c; i++ {
				low := x & -x
				these |= low
				x ^= low
			}
		}
		todo &^= these
		d.bits.n -= c
		// Bit c-1-i of v corrects the ith coefficient of these.
		v := d.bits.a >> uint(d.bits.n) & (1<<uint(c) - 1)
		for k := these & d.keepZig; k != 0; k &= k - 1 {
			z := mbits.TrailingZeros64(k)
			i := int32(mbits.OnesCount64(these & (1<<uint(z) - 1)))
			if v>>uint(c-1-i)&1 != 0 {
				u := d.zigIdx[z&(blockSize-1)] & (blockSize - 1)
				b[u] += delta * (b[u]>>31 | 1) // away from zero
			}
		}
	}
	return stop, nil
}

func (d *decoder) reconstructProgressiveImage() error {
	// The h0, mxx, by and bx variables have the same meaning as in the
	// processSOS method.
	h0 := d.comp[0].h
	mxx := (d.width + 8*h0 - 1) / (8 * h0)
	var tmp block
	for i := 0; i < d.nComp; i++ {
		if d.progCoeffs[i] == nil && d.progDC[i] == nil {
			continue
		}
		v := 8 * d.comp[0].v / d.comp[i].v
		h := 8 * d.comp[0].h / d.comp[i].h
		stride := mxx * d.comp[i].h
		for by := 0; by*v < d.height; by++ {
			for bx := 0; bx*h < d.width; bx++ {
				b := &tmp
				switch {
				case d.progDC[i] != nil:
					tmp[0] = d.progDC[i][by*stride+bx]
				case d.progStride == blockSize:
					b = d.progBlock(i, by*stride+bx)
				default:
					// A compact block: its bs x bs coefficients go to
					// their natural places, which idctReduced reads.
					c := d.progBlock(i, by*stride+bx)
					for y := range d.bs {
						copy(tmp[y*8:y*8+d.bs], c[y*d.bs:])
					}
				}
				if err := d.reconstructBlock(b, bx, by, i); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// progBlock returns the coefficients of block i of component c, kept
// between the scans of a progressive JPEG, at d.zigIdx. A compact block
// (progStride < 64) is only the first progStride values of the array.
func (d *decoder) progBlock(c, i int) *block {
	return (*block)(d.progCoeffs[c][i*d.progStride : i*d.progStride+blockSize])
}

// reconstructBlock dequantizes, performs the inverse DCT and stores the block
// to the image: 8x8 pixels, or bs x bs at a reduced scale.
func (d *decoder) reconstructBlock(b *block, bx, by, compIndex int) error {
	bs := d.bs
	dst, stride := []byte(nil), 0
	if d.nComp == 1 {
		dst, stride = d.img1.Pix[bs*(by*d.img1.Stride+bx):], d.img1.Stride
	} else {
		switch compIndex {
		case 0:
			dst, stride = d.img3.Y[bs*(by*d.img3.YStride+bx):], d.img3.YStride
		case 1:
			dst, stride = d.img3.Cb[bs*(by*d.img3.CStride+bx):], d.img3.CStride
		case 2:
			dst, stride = d.img3.Cr[bs*(by*d.img3.CStride+bx):], d.img3.CStride
		case 3:
			dst, stride = d.blackPix[bs*(by*d.blackStride+bx):], d.blackStride
		default:
			return UnsupportedError("too many components")
		}
	}
	qt := &d.quant[d.comp[compIndex].tq]
	switch bs {
	case 1:
		dst[0] = idctDC(b[0] * qt[0])
		return nil
	case 2, 4:
		idctReduced(b, qt, bs, dst, stride)
		return nil
	}
	for zig := 0; zig < blockSize; zig++ {
		b[unzig[zig]] *= qt[zig]
	}
	idct(b)
	// Level shift by +128, clip to [0, 255], and write to dst.
	for y := 0; y < 8; y++ {
		y8 := y * 8
		yStride := y * stride
		for x := 0; x < 8; x++ {
			c := b[y8+x]
			if c < -128 {
				c = 0
			} else if c > 127 {
				c = 255
			} else {
				c += 128
			}
			dst[yStride+x] = uint8(c)
		}
	}
	return nil
}

// findRST advances past the next RST restart marker that matches expectedRST.
// Other than I/O errors, it is also an error if we encounter an {0xFF, M}
// two-byte marker sequence where M is not 0x00, 0xFF or the expectedRST.
//
// This is similar to libjpeg's jdmarker.c's next_marker function.
// https://github.com/libjpeg-turbo/libjpeg-turbo/blob/2dfe6c0fe9e18671105e94f7cbf044d4a1d157e6/jdmarker.c#L892-L935
//
// Precondition: d.tmp[:2] holds the next two bytes of JPEG-encoded input
// (input in the d.readFull sense).
func (d *decoder) findRST(expectedRST uint8) error {
	for {
		// i is the index such that, at the bottom of the loop, we read 2-i
		// bytes into d.tmp[i:2], maintaining the invariant that d.tmp[:2]
		// holds the next two bytes of JPEG-encoded input. It is either 0 or 1,
		// so that each iteration advances by 1 or 2 bytes (or returns).
		i := 0

		if d.tmp[0] == 0xff {
			if d.tmp[1] == expectedRST {
				return nil
			} else if d.tmp[1] == 0xff {
				i = 1
			} else if d.tmp[1] != 0x00 {
				// libjpeg's jdmarker.c's jpeg_resync_to_restart does something
				// fancy here, treating RST markers within two (modulo 8) of
				// expectedRST differently from RST markers that are 'more
				// distant'. Until we see evidence that recovering from such
				// cases is frequent enough to be worth the complexity, we take
				// a simpler approach for now. Any marker that's not 0x00, 0xff
				// or expectedRST is a fatal FormatError.
				return FormatError("bad RST marker")
			}

		} else if d.tmp[1] == 0xff {
			d.tmp[0] = 0xff
			i = 1
		}

		if err := d.readFull(d.tmp[i:2]); err != nil {
			return err
		}
	}
}

// selectBit returns the position of the (k+1)th lowest set bit of x, which
// has more than k set bits, without a branch (Vigna's broadword select:
// the byte that holds it from the bytes' running popcounts, the bit within
// that byte from a table).
func selectBit(x, k uint64) int {
	const l8, h8 = 0x0101010101010101, 0x8080808080808080
	s := x - (x>>1)&0x5555555555555555
	s = s&0x3333333333333333 + (s>>2)&0x3333333333333333
	s = ((s + s>>4) & 0x0f0f0f0f0f0f0f0f) * l8 // byte i: the set bits of bytes 0 to i
	// The bytes whose running count is at most k come before it.
	place := uint(mbits.OnesCount64(((k*l8|h8)-s)&h8)) * 8
	rank := k - (s<<8>>place)&0xff
	return int(place) + int(selectInByte[(x>>place)&0xff|rank<<8])
}

// selectInByte[r<<8|v] is the position of the (r+1)th lowest set bit of
// the byte v.
var selectInByte = func() (t [8 << 8]uint8) {
	for v := range 256 {
		r := 0
		for b := range 8 {
			if v>>b&1 != 0 {
				t[r<<8|v] = uint8(b)
				r++
			}
		}
	}
	return t
}()
