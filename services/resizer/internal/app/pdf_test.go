package app

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/services/resizer/internal/pdfium"
	"github.com/photopipe/photopipe/shared/event"
	"github.com/photopipe/photopipe/shared/rendition"
)

// One PDF runtime for the package's tests, started by the first PDF.
var testRenderer = sync.OnceValues(func() (*pdfium.Renderer, error) {
	return pdfium.New(pdfium.Config{MemoryLimit: 512 << 20, Cache: pdfium.TestCache()}, slog.New(slog.DiscardHandler))
})

func testPDFOptions(tb testing.TB) PDFOptions {
	tb.Helper()
	r, err := testRenderer()
	require.NoError(tb, err)
	return PDFOptions{Renderer: r, DPI: 200, MaxPages: 10, Timeout: time.Minute}
}

// pdfPage is a page of a generated PDF: its size in points and the part
// of its width, from the left, that is black.
type pdfPage struct {
	w, h int
	dark float64
}

// makePDF writes a minimal valid PDF with one page per entry.
func makePDF(pages ...pdfPage) []byte {
	var b bytes.Buffer
	var offsets []int
	obj := func(body string) {
		offsets = append(offsets, b.Len())
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", len(offsets), body)
	}
	b.WriteString("%PDF-1.4\n")
	obj("<< /Type /Catalog /Pages 2 0 R >>")
	kids := ""
	for i := range pages {
		kids += fmt.Sprintf("%d 0 R ", 3+2*i)
	}
	obj(fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", kids, len(pages)))
	for i, p := range pages {
		obj(fmt.Sprintf("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Contents %d 0 R >>", p.w, p.h, 4+2*i))
		content := fmt.Sprintf("0 g 0 0 %.2f %d re f", p.dark*float64(p.w), p.h)
		obj(fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(content), content))
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(offsets)+1)
	for _, o := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(offsets)+1, xref)
	return b.Bytes()
}

func TestHandleRaftPDF(t *testing.T) {
	t.Parallel()
	f := newFixture(t, testLimits)
	// 100 dpi keeps the test quick under the race detector; the
	// end-to-end test renders at the default 200.
	opts := testPDFOptions(t)
	opts.DPI = 100
	f.r.WithPDF(opts)
	e := f.put(t, "p", raft(t, "Backend_Test_Raft.pdf"), "preview", "thumb")
	start := time.Now()
	require.NoError(t, f.r.Handle(context.Background(), e))
	t.Logf("5 pages, 2 renditions each, in %s (runtime started in %s)", time.Since(start).Round(time.Millisecond), f.r.pdf.Renderer.Started().Round(time.Millisecond))

	out, ok := f.pub.only(t).(*event.ThumbnailCreated)
	require.True(t, ok, "%#v", f.pub.only(t))
	require.Equal(t, 5, out.Pages)
	require.Equal(t, [2]int{850, 1100}, [2]int{out.Width, out.Height}, "US Letter at 100 dpi")
	require.Len(t, out.Renditions, 10)
	for i, rd := range out.Renditions {
		page := i/2 + 1
		require.Equal(t, page, rd.Page, "pages in order")
		if i%2 == 0 {
			require.Equal(t, fmt.Sprintf("thumbnails/p/preview-p%d.png", page), rd.Key)
			require.Equal(t, [2]int{850, 1100}, [2]int{rd.Width, rd.Height})
			data, err := os.ReadFile(filepath.Join(f.dir, rd.Key))
			require.NoError(t, err)
			require.Equal(t, byte(8), data[24], "8-bit PNG")
			cfg, err := png.DecodeConfig(bytes.NewReader(data))
			require.NoError(t, err)
			require.Equal(t, [2]int{850, 1100}, [2]int{cfg.Width, cfg.Height})
			require.Equal(t, int64(len(data)), rd.Bytes)
		} else {
			require.Equal(t, fmt.Sprintf("thumbnails/p/thumb-p%d.jpg", page), rd.Key)
			require.Equal(t, [2]int{247, 320}, [2]int{rd.Width, rd.Height})
			cfg, format, _ := f.stored(t, rd.Key)
			require.Equal(t, "jpeg", format)
			require.Equal(t, [2]int{247, 320}, [2]int{cfg.Width, cfg.Height})
		}
	}
}

func TestHandlePDFPages(t *testing.T) {
	t.Parallel()
	pages := []pdfPage{{144, 72, 0.5}, {72, 144, 0.25}, {720, 360, 0.75}}
	f := newFixture(t, testLimits)
	e := f.put(t, "p", makePDF(pages...), "square100", "small")
	require.NoError(t, f.r.Handle(context.Background(), e))
	out, ok := f.pub.only(t).(*event.ThumbnailCreated)
	require.True(t, ok, "%#v", f.pub.only(t))
	require.Equal(t, 3, out.Pages)
	require.Equal(t, [2]int{400, 200}, [2]int{out.Width, out.Height}, "the first page at 200 dpi")
	want := []struct {
		name string
		page int
		w, h int
	}{
		{"square100", 1, 100, 100}, {"small", 1, 128, 64},
		{"square100", 2, 100, 100}, {"small", 2, 64, 128},
		{"square100", 3, 100, 100}, {"small", 3, 128, 64},
	}
	require.Len(t, out.Renditions, len(want))
	for i, w := range want {
		rd := out.Renditions[i]
		require.Equal(t, [2]any{w.name, w.page}, [2]any{rd.Name, rd.Page})
		require.Equal(t, [2]int{w.w, w.h}, [2]int{rd.Width, rd.Height}, "%s p%d", w.name, w.page)
	}
	// The small rendition of page 3 is black on its left three quarters.
	obj, err := f.store.Open(context.Background(), out.Renditions[5].Key)
	require.NoError(t, err)
	defer obj.Close()
	img, _, err := image.Decode(obj)
	require.NoError(t, err)
	for x, dark := range map[int]bool{10: true, 80: true, 120: false} {
		r, _, _, _ := img.At(x, 32).RGBA()
		require.Equal(t, dark, r < 0x8000, "x=%d", x)
	}
}

func TestHandlePDFFailures(t *testing.T) {
	t.Parallel()
	raftPDF := raft(t, "Backend_Test_Raft.pdf")
	cases := []struct {
		name   string
		data   []byte
		limits func(o *PDFOptions, l *int64)
		code   string
	}{
		{"more pages than the limit", raftPDF, func(o *PDFOptions, _ *int64) { o.MaxPages = 4 }, event.CodePageLimit},
		{"a page over the pixel limit at the dpi", makePDF(pdfPage{72, 72, 1}, pdfPage{14400, 14400, 1}), nil, event.CodePixelLimit},
		{"raft pages over a lower pixel limit", raftPDF, func(_ *PDFOptions, l *int64) { *l = 1700*2200 - 1 }, event.CodePixelLimit},
		{"higher dpi goes over the limit", raftPDF, func(o *PDFOptions, l *int64) { o.DPI, *l = 300, 1700*2200 }, event.CodePixelLimit},
		{"no pages", makePDF(), nil, event.CodeDecodeError},
		{"truncated", raftPDF[:len(raftPDF)/3], nil, event.CodeDecodeError},
		{"not a pdf after the signature", []byte("%PDF-1.4\nnothing here\n"), nil, event.CodeDecodeError},
		{"slower than the timeout", raftPDF, func(o *PDFOptions, _ *int64) { o.Timeout = time.Millisecond }, event.CodeDecodeError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts, max := testPDFOptions(t), testLimits.MaxPixels
			if tc.limits != nil {
				tc.limits(&opts, &max)
			}
			f := newFixture(t, testLimits)
			f.r.limits.MaxPixels = max
			f.r.WithPDF(opts)
			e := f.put(t, "p", tc.data, "preview", "thumb")
			require.NoError(t, f.r.Handle(context.Background(), e))
			f.failed(t, e, tc.code)
		})
	}
}

func TestHandlePDFDisabled(t *testing.T) {
	t.Parallel()
	f := newFixture(t, testLimits)
	f.r.WithPDF(PDFOptions{})
	e := f.put(t, "p", makePDF(pdfPage{72, 72, 0.5}))
	require.NoError(t, f.r.Handle(context.Background(), e))
	f.failed(t, e, event.CodeUnsupportedFormat)
}

func TestHandlePDFCancelledIsNotAFailure(t *testing.T) {
	t.Parallel()
	f := newFixture(t, testLimits)
	e := f.put(t, "p", makePDF(pdfPage{72, 72, 0.5}))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := f.r.Handle(ctx, e)
	require.ErrorIs(t, err, context.Canceled)
	_, isFailure := event.AsFailure(err)
	require.False(t, isFailure)
	require.Empty(t, f.pub.events)
}

func TestRenderSize(t *testing.T) {
	t.Parallel()
	p := rendition.DefaultPresets()
	cases := []struct {
		name    string
		page    pageSize
		presets []rendition.Preset
		w, h    int
	}{
		{"thumb of a portrait page", pageSize{1700, 2200}, []rendition.Preset{p["thumb"]}, 247, 320},
		{"thumb of a landscape page", pageSize{2200, 1700}, []rendition.Preset{p["thumb"]}, 320, 247},
		{"the largest preset decides", pageSize{1700, 2200}, []rendition.Preset{p["thumb"], p["resized"], p["small"]}, 464, 600},
		{"crop covers its box", pageSize{1000, 2000}, []rendition.Preset{p["square100"]}, 100, 200},
		{"never larger than the page at the dpi", pageSize{1700, 2200}, []rendition.Preset{p["preview"]}, 1700, 2200},
		{"small page", pageSize{50, 40}, []rendition.Preset{p["thumb"]}, 50, 40},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w, h := renderSize(tc.page, tc.presets)
			require.Equal(t, [2]int{tc.w, tc.h}, [2]int{w, h})
		})
	}
}

func TestPagePixels(t *testing.T) {
	t.Parallel()
	r := &Resizer{limits: testLimits, pdf: PDFOptions{DPI: 200}}
	cases := []struct {
		name     string
		wpt, hpt float64
		want     pageSize
		code     string
	}{
		{"letter", 612, 792, pageSize{1700, 2200}, ""},
		{"a4", 595.28, 841.89, pageSize{1654, 2339}, ""},
		{"under half a pixel", 0.1, 100, pageSize{}, event.CodeDecodeError},
		{"not a number", math.NaN(), 100, pageSize{}, event.CodeDecodeError},
		{"negative", -612, 792, pageSize{}, event.CodeDecodeError},
		{"over the pixel limit", 14400, 14400, pageSize{}, event.CodePixelLimit},
		{"infinite", math.Inf(1), 1, pageSize{}, event.CodePixelLimit},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := r.pagePixels(1, tc.wpt, tc.hpt)
			if tc.code == "" {
				require.NoError(t, err)
				require.Equal(t, tc.want, got)
				return
			}
			f, ok := event.AsFailure(err)
			require.True(t, ok, "%v", err)
			require.Equal(t, tc.code, f.Code)
		})
	}
}
