// Copyright 2009 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package jpegscale

import (
	"encoding/binary"
	"io"
)

// maxCodeLength is the maximum (inclusive) number of bits in a Huffman code.
const maxCodeLength = 16

// maxNCodes is the maximum (inclusive) number of codes in a Huffman tree.
const maxNCodes = 256

// lutSize is the log-2 size of the Huffman decoder's look-up table.
const lutSize = 8

// acLookahead is the number of bits the combined AC table (huffman.ac) is
// indexed by. Nine bits, as in libjpeg-turbo, decode most AC codes of a
// photo, together with their value bits, in one look-up.
const acLookahead = 9

// Fields of a huffman.ac entry.
const (
	// acBits is the number of bits the entry consumes: the code length,
	// plus the size of the value when acValue is set.
	acBits = 0x1f
	// acValue says the entry's bits 16-31 hold the extended coefficient
	// (zero when the symbol has no value bits). Without it, the caller
	// still has to read size bits.
	acValue = 0x20
	// Bits 8-15 hold the symbol, (run << 4) | size.
)

// huffman is a Huffman decoder, specified in section C.
type huffman struct {
	// length is the number of codes in the tree.
	nCodes int32
	// lut is the look-up table for the next lutSize bits in the bit-stream.
	// The high 8 bits of the uint16 are the encoded value. The low 8 bits
	// are 1 plus the code length, or 0 if the value is too large to fit in
	// lutSize bits.
	lut [1 << lutSize]uint16
	// vals are the decoded values, sorted by their encoding.
	vals [maxNCodes]uint8
	// minCodes[i] is the minimum code of length i, or -1 if there are no
	// codes of that length.
	minCodes [maxCodeLength]int32
	// maxCodes[i] is the maximum code of length i, or -1 if there are no
	// codes of that length.
	maxCodes [maxCodeLength]int32
	// valsIndices[i] is the index into vals of minCodes[i].
	valsIndices [maxCodeLength]int32
	// ac is the combined look-up table (see decodeACs and decodeDC) for
	// the next acLookahead bits, with the fields acBits, acValue, the
	// symbol and the coefficient; 0 when the code is longer than
	// acLookahead bits.
	ac [1 << acLookahead]int32
}

// errShortHuffmanData means that an unexpected EOF occurred while decoding
// Huffman data.
var errShortHuffmanData = FormatError("short Huffman data")

// ensureNBits reads bytes from the byte buffer to ensure that d.bits.n is at
// least n (n <= 32). For best performance (avoiding function calls inside
// hot loops), the caller is the one responsible for first checking that
// d.bits.n < n.
func (d *decoder) ensureNBits(n int32) error {
	if d.refillFast(); d.bits.n >= n {
		return nil
	}
	for {
		c, err := d.readByteStuffedByte()
		if err != nil {
			if err == io.ErrUnexpectedEOF {
				return errShortHuffmanData
			}
			return err
		}
		d.bits.a = d.bits.a<<8 | uint64(c)
		d.bits.n += 8
		if d.bits.n >= n {
			break
		}
	}
	return nil
}

// refillFast tops d.bits up to at least 56 bits, several bytes at once,
// when the next 8 buffered bytes hold no 0xff; otherwise it does nothing and
// ensureNBits takes the bytes one at a time. Excluding 0xff keeps byte
// stuffing, markers (restarts, the end of the scan, hostile markers in the
// middle of it) and the end of the buffer on the careful path, whose
// errors and unread bookkeeping are Go's. Bytes taken here are never
// unread: they are entropy-coded data, and whatever of them a scan does not
// use is padding that the marker search after it would skip anyway.
func (d *decoder) refillFast() {
	if d.bytes.i+8 > d.bytes.j {
		return
	}
	w := binary.BigEndian.Uint64(d.bytes.buf[d.bytes.i:])
	// A byte of w is 0xff when that byte of ^w is zero; this is the
	// classic has-a-zero-byte test, exact as to whether there is one.
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	if x := ^w; (x-lo)&^x&hi != 0 {
		return
	}
	k := (63 - d.bits.n) >> 3 // whole bytes that fit, keeping n <= 63
	if k == 0 {
		return
	}
	d.bits.a = d.bits.a<<(8*k) | w>>(64-8*k)
	d.bits.n += 8 * k
	d.bytes.i += int(k)
	d.bytes.nUnreadable = 0
}

// receiveExtend is the composition of RECEIVE and EXTEND, specified in section
// F.2.2.1.
func (d *decoder) receiveExtend(t uint8) (int32, error) {
	if d.bits.n < int32(t) {
		if err := d.ensureNBits(int32(t)); err != nil {
			return 0, err
		}
	}
	d.bits.n -= int32(t)
	s := int32(1) << t
	x := int32(d.bits.a>>uint8(d.bits.n)) & (s - 1)
	// EXTEND without a branch: the sign of a coefficient is a coin toss,
	// and a mispredicted branch here cost a third of the decoding time.
	x += ((x - s>>1) >> 31) & (1 - s)
	return x, nil
}

// skipBits drops the next t bits: a coefficient a reduced-size decode does
// not use still has to be read past.
func (d *decoder) skipBits(t uint8) error {
	if d.bits.n < int32(t) {
		if err := d.ensureNBits(int32(t)); err != nil {
			return err
		}
	}
	d.bits.n -= int32(t)
	return nil
}

// processDHT processes a Define Huffman Table marker, and initializes a huffman
// struct from its contents. Specified in section B.2.4.2.
func (d *decoder) processDHT(n int) error {
	for n > 0 {
		if n < 17 {
			return FormatError("DHT has wrong length")
		}
		if err := d.readFull(d.tmp[:17]); err != nil {
			return err
		}
		tc := d.tmp[0] >> 4
		if tc > maxTc {
			return FormatError("bad Tc value")
		}
		th := d.tmp[0] & 0x0f
		// The baseline th <= 1 restriction is specified in table B.5.
		if th > maxTh || (d.baseline && th > 1) {
			return FormatError("bad Th value")
		}
		h := &d.huff[tc][th]

		// Read nCodes and h.vals (and derive h.nCodes).
		// nCodes[i] is the number of codes with code length i.
		// h.nCodes is the total number of codes.
		h.nCodes = 0
		var nCodes [maxCodeLength]int32
		for i := range nCodes {
			nCodes[i] = int32(d.tmp[i+1])
			h.nCodes += nCodes[i]
		}
		if h.nCodes == 0 {
			return FormatError("Huffman table has zero length")
		}
		if h.nCodes > maxNCodes {
			return FormatError("Huffman table has excessive length")
		}
		n -= int(h.nCodes) + 17
		if n < 0 {
			return FormatError("DHT has wrong length")
		}
		if err := d.readFull(h.vals[:h.nCodes]); err != nil {
			return err
		}

		// Derive the look-up table.
		clear(h.lut[:])
		var x, code uint32
		for i := uint32(0); i < lutSize; i++ {
			code <<= 1
			for j := int32(0); j < nCodes[i]; j++ {
				// The codeLength is 1+i, so shift code by 8-(1+i) to
				// calculate the high bits for every 8-bit sequence
				// whose codeLength's high bits matches code.
				// The high 8 bits of lutValue are the encoded value.
				// The low 8 bits are 1 plus the codeLength.
				base := uint8(code << (7 - i))
				lutValue := uint16(h.vals[x])<<8 | uint16(2+i)
				for k := uint8(0); k < 1<<(7-i); k++ {
					h.lut[base|k] = lutValue
				}
				code++
				x++
			}
		}

		h.buildAC(&nCodes)

		// Derive minCodes, maxCodes, and valsIndices.
		var c, index int32
		for i, n := range nCodes {
			if n == 0 {
				h.minCodes[i] = -1
				h.maxCodes[i] = -1
				h.valsIndices[i] = -1
			} else {
				h.minCodes[i] = c
				h.maxCodes[i] = c + n - 1
				h.valsIndices[i] = index
				c += n
				index += n
			}
			c <<= 1
		}
	}
	return nil
}

// decodeHuffman returns the next Huffman-coded value from the bit-stream,
// decoded according to h.
func (d *decoder) decodeHuffman(h *huffman) (uint8, error) {
	if h.nCodes == 0 {
		return 0, FormatError("uninitialized Huffman table")
	}

	if d.bits.n < 8 {
		if err := d.ensureNBits(8); err != nil {
			if err != errMissingFF00 && err != errShortHuffmanData {
				return 0, err
			}
			// There are no more bytes of data in this segment, but we may still
			// be able to read the next symbol out of the previously read bits.
			// First, undo the readByte that the ensureNBits call made.
			if d.bytes.nUnreadable != 0 {
				d.unreadByteStuffedByte()
			}
			goto slowPath
		}
	}
	if v := h.lut[(d.bits.a>>uint32(d.bits.n-lutSize))&0xff]; v != 0 {
		n := (v & 0xff) - 1
		d.bits.n -= int32(n)
		return uint8(v >> 8), nil
	}

slowPath:
	for i, code := 0, int32(0); i < maxCodeLength; i++ {
		if d.bits.n == 0 {
			if err := d.ensureNBits(1); err != nil {
				return 0, err
			}
		}
		d.bits.n--
		code |= int32(d.bits.a>>uint32(d.bits.n)) & 1
		if code <= h.maxCodes[i] {
			return h.vals[h.valsIndices[i]+code-h.minCodes[i]], nil
		}
		code <<= 1
	}
	return 0, FormatError("bad Huffman code")
}

func (d *decoder) decodeBit() (bool, error) {
	if d.bits.n == 0 {
		if err := d.ensureNBits(1); err != nil {
			return false, err
		}
	}
	d.bits.n--
	return d.bits.a>>uint32(d.bits.n)&1 != 0, nil
}

// readEOBRun sets d.eobRun to the end-of-band run that a symbol of run r
// and size 0 (r < 15) announces: 1<<r bands, plus r more bits of count.
func (d *decoder) readEOBRun(r uint8) error {
	d.eobRun = uint16(1 << r)
	if r != 0 {
		bits, err := d.decodeBits(int32(r))
		if err != nil {
			return err
		}
		d.eobRun |= uint16(bits)
	}
	return nil
}

func (d *decoder) decodeBits(n int32) (uint32, error) {
	if d.bits.n < n {
		if err := d.ensureNBits(n); err != nil {
			return 0, err
		}
	}
	ret := uint32(d.bits.a >> uint32(d.bits.n-n))
	ret &= (1 << uint32(n)) - 1
	d.bits.n -= n
	return ret, nil
}

// buildAC derives h.ac from the code lengths and h.vals. Every code of at
// most acLookahead bits fills the entries its bits prefix; when its value
// bits fit too, each entry also holds the coefficient those bits extend to.
func (h *huffman) buildAC(nCodes *[maxCodeLength]int32) {
	clear(h.ac[:])
	var x, code uint32
	for i := uint32(0); i < acLookahead; i++ {
		code <<= 1
		for j := int32(0); j < nCodes[i]; j++ {
			codeLen := i + 1
			sym := h.vals[x]
			size := uint32(sym & 0x0f)
			// The mask keeps an over-subscribed (hostile) table in
			// bounds, as the uint8 conversion does for h.lut.
			base := code << (acLookahead - codeLen) & (1<<acLookahead - 1)
			for k := uint32(0); k < 1<<(acLookahead-codeLen); k++ {
				e := int32(sym)<<8 | int32(codeLen)
				if codeLen+size <= acLookahead {
					// The size bits after the code: EXTEND them (F.2.2.1).
					r := int32(k >> (acLookahead - codeLen - size))
					if size != 0 && r < 1<<(size-1) {
						r += -1<<size + 1
					}
					e = r<<16 | int32(sym)<<8 | acValue | int32(codeLen+size)
				}
				h.ac[base|k] = e
			}
			code++
			x++
		}
	}
}
