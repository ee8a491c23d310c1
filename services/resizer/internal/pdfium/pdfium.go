// Package pdfium renders PDF pages with PDFium compiled to WebAssembly and
// run by wazero: pure Go, so the resizer stays a static binary. PDFium is
// compiled to machine code once per process, at the first PDF; every
// document then gets its own small runtime and instance built from that
// code (tens of milliseconds), with no file system, a memory cap, and a
// context that stops it mid-page. When the document is closed, all of its
// memory goes with it, so a hostile PDF can neither crash the process nor
// keep memory after it is done.
package pdfium

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"log/slog"
	"sync"
	"time"

	gopdfium "github.com/klippa-app/go-pdfium"
	pdferrors "github.com/klippa-app/go-pdfium/errors"
	"github.com/klippa-app/go-pdfium/references"
	"github.com/klippa-app/go-pdfium/requests"
	"github.com/klippa-app/go-pdfium/webassembly"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/photopipe/photopipe/shared/event"
)

// wasmPageSize is the size of a WebAssembly memory page.
const wasmPageSize = 64 << 10

// Config bounds the renderer.
type Config struct {
	// MemoryLimit caps the memory of one document's instance (the PDF,
	// PDFium's state and the page bitmap), 16 MiB to 4 GiB.
	MemoryLimit int64
	// Cache keeps PDFium's compiled code; nil keeps it in memory for the
	// process. A directory cache (NewCache) also spares the next process
	// the compilation.
	Cache wazero.CompilationCache
}

// Validate reports what makes the configuration unusable.
func (c Config) Validate() error {
	if c.MemoryLimit < 16<<20 || c.MemoryLimit > 4<<30 {
		return fmt.Errorf("pdfium: memory limit %d is outside 16 MiB..4 GiB", c.MemoryLimit)
	}
	return nil
}

// Renderer opens PDF documents. It is safe for concurrent use; how many
// documents are open at once is the caller's to bound (the resizer's
// RENDER_WORKERS).
type Renderer struct {
	cfg       Config
	ownsCache bool
	log       *slog.Logger
	mu        sync.Mutex
	warm      bool          // PDFium is compiled into cfg.Cache
	started   time.Duration // how long compiling took
	closed    bool
}

// New returns a Renderer. Nothing is compiled until the first document.
func New(cfg Config, log *slog.Logger) (*Renderer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Renderer{cfg: cfg, log: log}
	if cfg.Cache == nil {
		r.cfg.Cache, r.ownsCache = wazero.NewCompilationCache(), true
	}
	return r, nil
}

// Started reports how long compiling PDFium took, zero before the first
// document.
func (r *Renderer) Started() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.started
}

// Close releases the compiled code, unless the cache was given in Config
// (its owner closes it); documents cannot be opened after it.
func (r *Renderer) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	if !r.ownsCache {
		return nil
	}
	if err := r.cfg.Cache.Close(context.Background()); err != nil {
		return fmt.Errorf("close pdfium cache: %w", err)
	}
	return nil
}

func (r *Renderer) runtimeConfig() wazero.RuntimeConfig {
	return wazero.NewRuntimeConfig().
		// PDFium's setjmp/longjmp are WebAssembly exceptions.
		WithCoreFeatures(api.CoreFeaturesV2 | experimental.CoreFeaturesExceptionHandling).
		WithMemoryLimitPages(uint32(r.cfg.MemoryLimit / wasmPageSize)).
		// A document's calls stop when its context ends, even mid-page.
		WithCloseOnContextDone(true).
		WithCompilationCache(r.cfg.Cache)
}

// newPool starts a runtime with one instance for a document; ctx ends it.
func (r *Renderer) newPool(ctx context.Context) (gopdfium.Pool, error) {
	pool, err := webassembly.Init(webassembly.Config{
		Context:       ctx,
		MinIdle:       0,
		MaxIdle:       1,
		MaxTotal:      1,
		FSConfig:      wazero.NewFSConfig(), // no file system: documents come as bytes
		RuntimeConfig: r.runtimeConfig(),
		Stdout:        io.Discard,
		Stderr:        io.Discard,
	})
	if err != nil {
		return nil, fmt.Errorf("start pdfium: %w", err)
	}
	return pool, nil
}

// compile fills the cache once, so that concurrent first documents do not
// all compile PDFium.
func (r *Renderer) compile(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errors.New("pdfium: renderer is closed")
	}
	if r.warm {
		return nil
	}
	start := time.Now()
	pool, err := r.newPool(ctx)
	if err != nil {
		return err
	}
	_ = pool.Close() // the compiled code stays in the cache
	r.warm, r.started = true, time.Since(start)
	r.log.InfoContext(ctx, "pdf runtime compiled", slog.Duration("duration", r.started))
	return nil
}

// Document is an open PDF. It is not safe for concurrent use.
type Document struct {
	ctx   context.Context
	pool  gopdfium.Pool
	inst  gopdfium.Pdfium
	doc   references.FPDF_DOCUMENT
	pages int
}

// Open loads a PDF into a runtime of its own. When ctx ends, the runtime
// stops, even in the middle of a page, and every call fails with ctx's
// cause. Errors about the document are event Failures (decode_error);
// others (the runtime) are not.
func (r *Renderer) Open(ctx context.Context, data []byte) (*Document, error) {
	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}
	if err := r.compile(ctx); err != nil {
		return nil, err
	}
	pool, err := r.newPool(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, err
	}
	d := &Document{ctx: ctx, pool: pool}
	d.inst, err = pool.GetInstanceWithContext(ctx)
	if err != nil {
		d.Close()
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, fmt.Errorf("pdfium instance: %w", err)
	}
	opened, err := d.inst.OpenDocument(&requests.OpenDocument{File: &data})
	if err != nil {
		d.Close()
		return nil, d.fail(err, "open the PDF")
	}
	d.doc = opened.Document
	count, err := d.inst.FPDF_GetPageCount(&requests.FPDF_GetPageCount{Document: opened.Document})
	if err != nil {
		d.Close()
		return nil, d.fail(err, "count the pages")
	}
	d.pages = count.PageCount
	return d, nil
}

// fail classifies err: the context's cause when the runtime was stopped,
// otherwise a decode_error naming what was being done.
func (d *Document) fail(err error, doing string) error {
	if d.ctx.Err() != nil {
		return context.Cause(d.ctx)
	}
	switch {
	case errors.Is(err, pdferrors.ErrPassword), errors.Is(err, pdferrors.ErrSecurity):
		return event.Fail(event.CodeDecodeError, "the PDF is encrypted or password-protected")
	case errors.Is(err, pdferrors.ErrFormat), errors.Is(err, pdferrors.ErrFile):
		return event.Fail(event.CodeDecodeError, "the PDF is damaged or not a PDF: %v", err)
	}
	return event.Fail(event.CodeDecodeError, "%s: %v", doing, err)
}

// Pages is the number of pages.
func (d *Document) Pages() int { return d.pages }

// PageSize returns the size of page i (from 0) in points (1/72 inch).
func (d *Document) PageSize(i int) (width, height float64, err error) {
	res, err := d.inst.FPDF_GetPageSizeByIndex(&requests.FPDF_GetPageSizeByIndex{Document: d.doc, Index: i})
	if err != nil {
		return 0, 0, d.fail(err, fmt.Sprintf("read the size of page %d", i+1))
	}
	return res.Width, res.Height, nil
}

// Render renders page i (from 0) to fit in width x height pixels, on white
// unless the page is transparent. The image lives in the instance's memory:
// use it only until release is called, and call release before the next
// Render.
func (d *Document) Render(i, width, height int) (img image.Image, release func(), err error) {
	res, err := d.inst.RenderPageInPixels(&requests.RenderPageInPixels{
		Page:  requests.Page{ByIndex: &requests.PageByIndex{Document: d.doc, Index: i}},
		Width: width, Height: height,
	})
	if err != nil {
		return nil, nil, d.fail(err, fmt.Sprintf("render page %d", i+1))
	}
	return res.Result.RenderedImage, res.Cleanup, nil
}

// Close stops the document's runtime and frees all of its memory.
func (d *Document) Close() {
	if d.inst != nil {
		_ = d.inst.Close()
	}
	_ = d.pool.Close()
}
