package imaging

import "image"

// boxShrink divides img by the largest integer factor that keeps it at
// least twice as large as w x h, averaging each factor x factor block
// (partial blocks at the right and bottom edges average what they have).
// Lanczos3 then only has to go from about 2x to 1x, where its cost is
// small, instead of filtering every source pixel with a wide kernel; the
// box filter before it removes what would alias. Images it does not know
// (paletted, 16-bit, translucent NRGBA) and those already small enough
// come back as they are.
func boxShrink(img image.Image, w, h int) image.Image {
	b := img.Bounds()
	k := min(b.Dx()/(2*max(w, 1)), b.Dy()/(2*max(h, 1)))
	if k < 2 {
		return img
	}
	switch m := img.(type) {
	case *image.YCbCr:
		return shrinkYCbCr(m, k)
	case *image.Gray:
		dw, dh := ceilDiv(b.Dx(), k), ceilDiv(b.Dy(), k)
		out := image.NewGray(image.Rect(0, 0, dw, dh))
		shrinkPlane(out.Pix, out.Stride, m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride, b.Dx(), b.Dy(), k, 1)
		return out
	case *image.RGBA: // premultiplied: a plain average is right
		dw, dh := ceilDiv(b.Dx(), k), ceilDiv(b.Dy(), k)
		out := image.NewRGBA(image.Rect(0, 0, dw, dh))
		shrinkPlane(out.Pix, out.Stride, m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride, b.Dx(), b.Dy(), k, 4)
		return out
	case *image.CMYK:
		dw, dh := ceilDiv(b.Dx(), k), ceilDiv(b.Dy(), k)
		out := image.NewCMYK(image.Rect(0, 0, dw, dh))
		shrinkPlane(out.Pix, out.Stride, m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride, b.Dx(), b.Dy(), k, 4)
		return out
	case *image.NRGBA:
		if !m.Opaque() { // averaging unpremultiplied colour would darken edges
			return img
		}
		dw, dh := ceilDiv(b.Dx(), k), ceilDiv(b.Dy(), k)
		out := image.NewNRGBA(image.Rect(0, 0, dw, dh))
		shrinkPlane(out.Pix, out.Stride, m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride, b.Dx(), b.Dy(), k, 4)
		return out
	}
	return img
}

// shrinkYCbCr shrinks each plane by k; the chroma planes keep their
// subsampling, so no full-size RGB copy is ever made.
func shrinkYCbCr(m *image.YCbCr, k int) *image.YCbCr {
	b := m.Bounds()
	out := image.NewYCbCr(image.Rect(0, 0, ceilDiv(b.Dx(), k), ceilDiv(b.Dy(), k)), m.SubsampleRatio)
	shrinkPlane(out.Y, out.YStride, m.Y[m.YOffset(b.Min.X, b.Min.Y):], m.YStride, b.Dx(), b.Dy(), k, 1)
	cw, ch := chromaSize(b.Dx(), b.Dy(), m.SubsampleRatio)
	c0 := m.COffset(b.Min.X, b.Min.Y)
	shrinkPlane(out.Cb, out.CStride, m.Cb[c0:], m.CStride, cw, ch, k, 1)
	shrinkPlane(out.Cr, out.CStride, m.Cr[c0:], m.CStride, cw, ch, k, 1)
	return out
}

// chromaSize is the size of the chroma planes of a w x h YCbCr image.
func chromaSize(w, h int, r image.YCbCrSubsampleRatio) (int, int) {
	switch r {
	case image.YCbCrSubsampleRatio422:
		return ceilDiv(w, 2), h
	case image.YCbCrSubsampleRatio420:
		return ceilDiv(w, 2), ceilDiv(h, 2)
	case image.YCbCrSubsampleRatio440:
		return w, ceilDiv(h, 2)
	case image.YCbCrSubsampleRatio411:
		return ceilDiv(w, 4), h
	case image.YCbCrSubsampleRatio410:
		return ceilDiv(w, 4), ceilDiv(h, 2)
	}
	return w, h
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// shrinkPlane averages k x k blocks of a w x h plane of interleaved
// channels (n per pixel) from src into dst, rounding to nearest.
func shrinkPlane(dst []byte, dstStride int, src []byte, srcStride, w, h, k, n int) {
	dw := ceilDiv(w, k)
	sums := make([]uint32, dw*n)
	for dy := 0; dy*k < h; dy++ {
		clear(sums)
		rows := min(k, h-dy*k)
		for r := range rows {
			row := src[(dy*k+r)*srcStride:]
			for dx := range dw {
				x0, x1 := dx*k, min(dx*k+k, w)
				s := sums[dx*n : dx*n+n]
				for i := x0 * n; i < x1*n; i += n {
					for c := range n {
						s[c] += uint32(row[i+c])
					}
				}
			}
		}
		out := dst[dy*dstStride:]
		for dx := range dw {
			cnt := uint32(rows * (min(dx*k+k, w) - dx*k))
			for c := range n {
				out[dx*n+c] = uint8((sums[dx*n+c] + cnt/2) / cnt)
			}
		}
	}
}
