package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pdfPage is a page of a generated PDF: its size in points and how far
// across its dark left part reaches (the rest is white).
type pdfPage struct {
	w, h int
	dark float64 // 0..1 of the width
}

// makePDF writes a minimal valid PDF, one page per entry, each with a
// black rectangle over the left dark fraction of the page.
func makePDF(pages ...pdfPage) []byte {
	var b bytes.Buffer
	var offsets []int
	obj := func(body string) {
		offsets = append(offsets, b.Len())
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", len(offsets), body)
	}
	b.WriteString("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
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

// TestPDFEndToEnd uploads PDFs through the four built services: every
// page becomes its own PNG (and thumb), in page order, keyed and recorded
// by page number, with the page count and sizes in the API and the files
// served with Content-Type, ETag and ranges; then the page limit, the
// pixel limit per page and a broken PDF.
func TestPDFEndToEnd(t *testing.T) {
	env := NewEnv(t)
	openAPI(env)
	env.Extra["PDF_MAX_PAGES"] = "6"
	api := env.StartPipeline(1)
	raft := raftFiles(t)

	// Pages told apart by their size, and by how much of them is dark.
	generated := []pdfPage{{144, 72, 0.5}, {72, 144, 0.25}, {216, 72, 0.75}, {100, 100, 0.5}}
	// At the default 200 dpi: points * 200 / 72, rounded.
	wantPx := [][2]int{{400, 200}, {200, 400}, {600, 200}, {278, 278}}
	files := []part{
		{field: "renditions", data: []byte("preview,thumb")},
		filePart("Backend_Test_Raft.pdf", raft["Backend_Test_Raft.pdf"]),
		filePart("generated.pdf", makePDF(generated...)),
		filePart("seven-pages.pdf", makePDF(pdfPage{72, 72, 0.5}, pdfPage{72, 72, 0.5}, pdfPage{72, 72, 0.5},
			pdfPage{72, 72, 0.5}, pdfPage{72, 72, 0.5}, pdfPage{72, 72, 0.5}, pdfPage{72, 72, 0.5})),
		// 200 x 200 inches: 40000 x 40000 pixels at 200 dpi, over MAX_PIXELS.
		filePart("huge-page.pdf", makePDF(pdfPage{72, 72, 0.5}, pdfPage{14400, 14400, 0.5})),
		filePart("broken.pdf", []byte("%PDF-1.7\nthis is not really a PDF\n%%EOF\n")),
	}
	var resp uploadResponse
	start := time.Now()
	require.Equal(t, http.StatusAccepted, postMultipart(t, api+"/photos/upload", &resp, files...))
	byName := map[string]string{}
	var ids []string
	for _, p := range resp.Photos {
		byName[p.Filename] = p.UUID
		ids = append(ids, p.UUID)
		assert.Equal(t, "application/pdf", p.Original.ContentType)
	}
	final := waitPhotos(t, api, ids, 120*time.Second)
	t.Logf("%d PDFs final in %s (includes the PDF runtime's start)", len(ids), time.Since(start).Round(time.Millisecond))

	t.Run("raft pdf", func(t *testing.T) {
		id := byName["Backend_Test_Raft.pdf"]
		p := final[id]
		require.Equal(t, "completed", p.Status, "%+v", p.Failure)
		// US Letter (612x792 points) at 200 dpi; the original's size is its
		// first page's.
		assert.Equal(t, 5, p.Original.Pages)
		assert.Equal(t, [2]int{1700, 2200}, [2]int{p.Original.Width, p.Original.Height})
		assert.Equal(t, "originals/"+id+"/Backend_Test_Raft.pdf", p.Original.Path)
		require.Len(t, p.Thumbnails, 10)
		var previews [][]byte
		for page := 1; page <= 5; page++ {
			pv := p.rendition(t, "preview", page)
			assert.Equal(t, fmt.Sprintf("thumbnails/%s/preview-p%d.png", id, page), pv.URL)
			assert.Equal(t, [2]int{1700, 2200}, [2]int{pv.Width, pv.Height})
			_, body, r := decodeFile(t, api, pv)
			assert.Equal(t, "image/png", r.Header.Get("Content-Type"))
			assert.Equal(t, 8, pngBitDepth(t, body))
			previews = append(previews, body)

			th := p.rendition(t, "thumb", page)
			assert.Equal(t, fmt.Sprintf("thumbnails/%s/thumb-p%d.jpg", id, page), th.URL)
			assert.Equal(t, [2]int{247, 320}, [2]int{th.Width, th.Height})
			decodeFile(t, api, th)
		}
		for i := 1; i < len(previews); i++ {
			assert.NotEqual(t, previews[0], previews[i], "page %d differs from page 1", i+1)
		}

		// GET /files on a page: ETag, conditional requests and ranges.
		pv := p.rendition(t, "preview", 2)
		r, body := getFile(t, api, pv.FileURL)
		require.Equal(t, http.StatusOK, r.StatusCode)
		etag := r.Header.Get("ETag")
		require.NotEmpty(t, etag)
		assert.Equal(t, "bytes", r.Header.Get("Accept-Ranges"))
		r2, _ := getFile(t, api, pv.FileURL, "If-None-Match", etag)
		assert.Equal(t, http.StatusNotModified, r2.StatusCode)
		r3, part := getFile(t, api, pv.FileURL, "Range", "bytes=8-23")
		assert.Equal(t, http.StatusPartialContent, r3.StatusCode)
		assert.Equal(t, fmt.Sprintf("bytes 8-23/%d", len(body)), r3.Header.Get("Content-Range"))
		assert.Equal(t, body[8:24], part)
		assert.Equal(t, "image/png", r3.Header.Get("Content-Type"))
	})

	t.Run("pages in order", func(t *testing.T) {
		id := byName["generated.pdf"]
		p := final[id]
		require.Equal(t, "completed", p.Status, "%+v", p.Failure)
		assert.Equal(t, len(generated), p.Original.Pages)
		assert.Equal(t, wantPx[0], [2]int{p.Original.Width, p.Original.Height})
		for i, want := range wantPx {
			pv := p.rendition(t, "preview", i+1)
			assert.Equal(t, want, [2]int{pv.Width, pv.Height}, "page %d", i+1)
			img, _, _ := decodeFile(t, api, pv)
			b := img.Bounds()
			// Dark up to the page's fraction, white after it.
			y := b.Dy() / 2
			darkEnd := int(generated[i].dark * float64(b.Dx()))
			assert.Equal(t, "black", blackOrWhite(img.At(darkEnd/2, y)), "page %d left", i+1)
			assert.Equal(t, "white", blackOrWhite(img.At((darkEnd+b.Dx())/2, y)), "page %d right", i+1)

			th := p.rendition(t, "thumb", i+1)
			tw, thh := fitIn(want[0], want[1], 320, 320)
			assert.Equal(t, [2]int{tw, thh}, [2]int{th.Width, th.Height}, "thumb of page %d", i+1)
		}
	})

	failures := map[string]string{
		"seven-pages.pdf": "page_limit",
		"huge-page.pdf":   "pixel_limit",
		"broken.pdf":      "decode_error",
	}
	for name, code := range failures {
		t.Run(name, func(t *testing.T) {
			p := final[byName[name]]
			assert.Equal(t, "failed", p.Status)
			require.NotNil(t, p.Failure)
			assert.Equal(t, code, p.Failure.Code, p.Failure.Message)
			assert.Empty(t, p.Thumbnails)
			assert.Empty(t, storedFiles(t, env, "thumbnails/"+p.UUID), "a refused PDF leaves no pages behind")
		})
	}
}

func blackOrWhite(c interface{ RGBA() (r, g, b, a uint32) }) string {
	r, g, b, _ := c.RGBA()
	if (r+g+b)/3 < 0x8000 {
		return "black"
	}
	return "white"
}
