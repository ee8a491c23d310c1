// Copyright 2012 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package jpegscale

// decodeACs decodes the AC coefficients zig to zigEnd of block b, scaled
// by 1 << al: the loop of sections F.2.2.2 and G.1.2.2 (a sequential scan,
// or the first pass of a progressive one). With skip set, coefficients that
// d.keepZig does not keep are read past but not stored. An end-of-band symbol sets
// d.eobRun, as in Go's decoder. A progressive scan passes its block's
// progNZ entry as nz, which gets the bits of the coefficients it made
// non-zero (nil for a sequential scan).
//
// It is the decoder's hot loop, hence the bit accumulator in locals (d.bits
// is written back around every call that uses it) and the fast path: while
// the accumulator holds at least 32 bits, enough for any code of at most
// acLookahead bits and any value, a code is decoded from h.ac, usually
// together with its value, without further checks. Longer codes and the
// last bits before a 0xff byte or the end of the data take Go's careful
// functions, with their errors.
//
// Unlike Go's decoder, a corrupt run that overshoots zigEnd has had its
// value bits read when they were in the look-up: the rest of such a scan
// is garbage either way.
func (d *decoder) decodeACs(b *block, nz *uint64, h *huffman, zig, zigEnd int32, al uint32, skip bool) error {
	a, n := d.bits.a, d.bits.n
	idx := &d.zigIdx
	var set uint64 // the coefficients made non-zero, for nz
	for ; zig <= zigEnd; zig++ {
		if n < 32 {
			d.bits.a, d.bits.n = a, n
			d.refillFast()
			a, n = d.bits.a, d.bits.n
		}
		var (
			sym  uint8
			coef int32
			done bool // coef holds the value: its bits have been read.
		)
		if n >= 32 {
			if e := h.ac[a>>uint32(n-acLookahead)&(1<<acLookahead-1)]; e&acValue != 0 {
				n -= e & acBits
				sym, coef, done = uint8(e>>8), e>>16, true
			} else if e != 0 {
				// The code fits the look-up but its 1 to 15 value bits
				// do not; at least 23 bits are left for them.
				n -= e & acBits
				sym = uint8(e >> 8)
				t := uint32(sym & 0x0f)
				n -= int32(t)
				s := int32(1) << t
				x := int32(a>>uint32(n)) & (s - 1)
				x += ((x - s>>1) >> 31) & (1 - s) // EXTEND, as receiveExtend
				coef, done = x, true
			}
		}
		if !done {
			d.bits.a, d.bits.n = a, n
			var err error
			if sym, err = d.decodeHuffman(h); err != nil {
				return err
			}
			a, n = d.bits.a, d.bits.n
		}
		val0 := sym >> 4
		val1 := sym & 0x0f
		if val1 == 0 {
			if val0 != 0x0f {
				d.bits.a, d.bits.n = a, n
				if err := d.readEOBRun(val0); err != nil {
					return err
				}
				d.eobRun--
				if nz != nil {
					*nz |= set
				}
				return nil
			}
			zig += 0x0f
			continue
		}
		zig += int32(val0)
		if zig > zigEnd {
			break
		}
		// zig is now in [1, 63]: the masks only spare bounds checks.
		set |= 1 << uint(zig&(blockSize-1))
		if skip && d.keepZig>>uint(zig&(blockSize-1))&1 == 0 {
			// At a reduced size: a coefficient only to read past.
			if !done {
				d.bits.a, d.bits.n = a, n
				if err := d.skipBits(val1); err != nil {
					return err
				}
				a, n = d.bits.a, d.bits.n
			}
			continue
		}
		if !done {
			d.bits.a, d.bits.n = a, n
			var err error
			if coef, err = d.receiveExtend(val1); err != nil {
				return err
			}
			a, n = d.bits.a, d.bits.n
		}
		b[idx[zig&(blockSize-1)]&(blockSize-1)] = coef << al
	}
	d.bits.a, d.bits.n = a, n
	if nz != nil {
		*nz |= set
	}
	return nil
}

// decodeDC decodes a DC difference (section F.2.2.1) with h.ac, which also
// serves DC tables: a DC symbol is a size, the same as an AC symbol with a
// run of 0. Symbols of 16 and more, longer codes and the last bits before
// a 0xff byte or the end of the data take Go's careful functions.
func (d *decoder) decodeDC(h *huffman) (int32, error) {
	if d.bits.n < 32 {
		d.refillFast()
	}
	if n := d.bits.n; n >= 32 {
		e := h.ac[d.bits.a>>uint32(n-acLookahead)&(1<<acLookahead-1)]
		if e != 0 && uint8(e>>8) < 16 {
			d.bits.n -= e & acBits
			if e&acValue != 0 {
				return e >> 16, nil
			}
			return d.receiveExtend(uint8(e>>8) & 0x0f)
		}
	}
	value, err := d.decodeHuffman(h)
	if err != nil {
		return 0, err
	}
	if value > 16 {
		return 0, UnsupportedError("excessive DC component")
	}
	return d.receiveExtend(value)
}

// skipACs reads past the AC coefficients zig to zigEnd of a block whose
// AC coefficients are all unused (a sequential scan decoded at 1/8): the
// loop of decodeACs without storing, keeping or extending anything, as
// most photos' thumbnails decode. It ends as decodeACs does.
func (d *decoder) skipACs(h *huffman, zig, zigEnd int32) error {
	a, n := d.bits.a, d.bits.n
	for zig <= zigEnd {
		if n < 32 {
			d.bits.a, d.bits.n = a, n
			d.refillFast()
			a, n = d.bits.a, d.bits.n
		}
		var sym uint8
		if e := h.ac[a>>uint32(n-acLookahead)&(1<<acLookahead-1)]; n >= 32 && e != 0 {
			n -= e & acBits
			sym = uint8(e >> 8)
			if e&acValue == 0 {
				n -= int32(sym & 0x0f) // value bits the look-up did not take
			}
		} else {
			d.bits.a, d.bits.n = a, n
			var err error
			if sym, err = d.decodeHuffman(h); err != nil {
				return err
			}
			if err := d.skipBits(sym & 0x0f); err != nil {
				return err
			}
			a, n = d.bits.a, d.bits.n
		}
		if sym&0x0f == 0 && sym != 0xf0 {
			// End of band: sequential scans have no runs of them.
			d.bits.a, d.bits.n = a, n
			if err := d.readEOBRun(sym >> 4); err != nil {
				return err
			}
			d.eobRun--
			return nil
		}
		zig += int32(sym>>4) + 1
	}
	d.bits.a, d.bits.n = a, n
	return nil
}
