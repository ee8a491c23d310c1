package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/sync/errgroup"
	"golang.org/x/term"
)

// submitOptions are the flags of photopipe submit.
type submitOptions struct {
	renditions string
	timeout    time.Duration
	interval   time.Duration
	progress   string // auto, bar or plain
	lists      []string
	sources    []string
}

// Defaults of photopipe submit.
const (
	defaultTimeout  = 30 * time.Minute
	defaultInterval = time.Second
	urlsPerRequest  = 100
	uploadsAtOnce   = 4
	pollsAtOnce     = 8
)

func parseSubmit(args []string) (submitOptions, error) {
	o := submitOptions{timeout: defaultTimeout, interval: defaultInterval, progress: "auto"}
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, value, inline := strings.Cut(a, "=")
		if !strings.HasPrefix(a, "-") || a == "-" {
			o.sources = append(o.sources, a)
			continue
		}
		if a == "--" {
			o.sources = append(o.sources, args[i+1:]...)
			break
		}
		needValue := func() (string, error) {
			if inline {
				return value, nil
			}
			if i+1 >= len(args) {
				return "", usageError{name + " needs a value"}
			}
			i++
			return args[i], nil
		}
		var err error
		switch name {
		case "-f", "--file", "--from":
			var v string
			if v, err = needValue(); err == nil {
				o.lists = append(o.lists, v)
			}
		case "-r", "--renditions":
			o.renditions, err = needValue()
		case "--timeout", "--interval":
			var v string
			var d time.Duration
			if v, err = needValue(); err == nil {
				if d, err = time.ParseDuration(v); err != nil || d <= 0 {
					return o, usageError{fmt.Sprintf("%s: %q is not a positive duration (like 10m or 500ms)", name, v)}
				}
				if name == "--timeout" {
					o.timeout = d
				} else {
					o.interval = d
				}
			}
		case "--progress":
			if o.progress, err = needValue(); err == nil && o.progress != "auto" && o.progress != "bar" && o.progress != "plain" {
				return o, usageError{"--progress is auto, bar or plain"}
			}
		case "--plain":
			o.progress = "plain"
		case "-h", "--help":
			return o, errHelp
		default:
			return o, usageError{fmt.Sprintf("submit: unknown flag %q", a)}
		}
		if err != nil {
			return o, err
		}
	}
	if len(o.sources) == 0 && len(o.lists) == 0 {
		return o, usageError{"submit needs files, folders or URLs (arguments, -f LIST or -f - for standard input)"}
	}
	return o, nil
}

// item is one photo to submit: a file or a URL, and what became of it.
type item struct {
	source     string // as given: a path or a URL
	isURL      bool
	id         string
	status     string // pending, processing, completed, failed; "" before it is registered
	reason     string // why it failed or was refused
	thumbnails []string
	deadLetter string
}

func (it *item) final() bool { return it.status == "completed" || it.status == "failed" }

// submit registers files (uploaded) and URLs (by reference), waits until
// every photo is completed or failed, and prints where the thumbnails are.
func submit(ctx context.Context, c *apiClient, args []string, stdin io.Reader, out io.Writer) error {
	o, err := parseSubmit(args)
	if err != nil {
		return err
	}
	items, err := collect(o, stdin)
	if err != nil {
		return err
	}
	if len(items) == 0 {
		return errors.New("nothing to submit: no files or URLs found")
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	rep := newReporter(out, o.progress, len(items))
	var urls, files []*item
	for _, it := range items {
		if it.isURL {
			urls = append(urls, it)
		} else {
			files = append(files, it)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(uploadsAtOnce)
	g.Go(func() error { return registerURLs(gctx, c, urls, o.renditions, rep) })
	for _, it := range files {
		g.Go(func() error {
			// Each goroutine has its own item; the reporter locks itself.
			var id, status string
			err := retry(gctx, func() (err error) {
				id, status, err = c.upload(gctx, it.source, o.renditions)
				return err
			})
			var apiErr *apiError
			if errors.As(err, &apiErr) && (apiErr.Status == http.StatusUnauthorized || apiErr.Status == http.StatusForbidden) {
				return err // the key is refused: no point trying the other files
			}
			if err != nil {
				if gctx.Err() != nil {
					return gctx.Err()
				}
				it.status, it.reason = "failed", uploadFailure(err)
				rep.done(it)
				return nil
			}
			it.id, it.status = id, status
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		rep.finish()
		return err
	}
	rep.describe("processing")
	if err := waitFinal(ctx, c, items, o.interval, rep); err != nil {
		rep.finish()
		return err
	}
	rep.finish()
	return summarize(out, c, items)
}

// collect reads the sources: arguments, then the lists (- is standard
// input); folders are walked for files (hidden ones skipped).
func collect(o submitOptions, stdin io.Reader) ([]*item, error) {
	sources := append([]string(nil), o.sources...)
	for _, l := range o.lists {
		var r io.Reader
		if l == "-" {
			r = stdin
		} else {
			f, err := os.Open(l)
			if err != nil {
				return nil, fmt.Errorf("read list: %w", err)
			}
			defer f.Close()
			r = f
		}
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line != "" && !strings.HasPrefix(line, "#") {
				sources = append(sources, line)
			}
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("read list %s: %w", l, err)
		}
	}
	var items []*item
	for _, s := range sources {
		if s == "-" {
			return nil, usageError{"use -f - to read sources from standard input"}
		}
		if strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") {
			items = append(items, &item{source: s, isURL: true})
			continue
		}
		st, err := os.Stat(s)
		if err != nil {
			return nil, fmt.Errorf("%s: not a URL, and %w", s, err)
		}
		if !st.IsDir() {
			items = append(items, &item{source: s})
			continue
		}
		var files []string
		err = filepath.WalkDir(s, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if p != s && strings.HasPrefix(d.Name(), ".") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.Type().IsRegular() {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("walk %s: %w", s, err)
		}
		sort.Strings(files)
		for _, f := range files {
			items = append(items, &item{source: f})
		}
	}
	return items, nil
}

type createdPhotos struct {
	Photos []struct {
		UUID   string `json:"uuid"`
		Status string `json:"status"`
	} `json:"photos"`
}

// uploadFailure is why an upload failed: the API's refusal, or that the
// API could not be reached.
func uploadFailure(err error) string {
	var apiErr *apiError
	if errors.As(err, &apiErr) {
		return "upload refused: " + err.Error()
	}
	return "upload failed: " + err.Error()
}

// registerURLs registers the URLs in requests of urlsPerRequest; a request
// refused as a whole (one bad URL) is retried URL by URL, so that only the
// bad ones fail, each with its reason.
func registerURLs(ctx context.Context, c *apiClient, items []*item, renditions string, rep *reporter) error {
	for start := 0; start < len(items); start += urlsPerRequest {
		chunk := items[start:min(start+urlsPerRequest, len(items))]
		err := retry(ctx, func() error { return createURLs(ctx, c, chunk, renditions) })
		var apiErr *apiError
		switch {
		case err == nil:
			continue
		case errors.As(err, &apiErr) && apiErr.Status == http.StatusBadRequest && len(chunk) > 1:
			for _, it := range chunk {
				if err := retry(ctx, func() error { return createURLs(ctx, c, []*item{it}, renditions) }); err != nil {
					if !errors.As(err, &apiErr) {
						return err
					}
					it.status, it.reason = "failed", "refused: "+apiErr.Message
					rep.done(it)
				}
			}
		case errors.As(err, &apiErr) && apiErr.Status == http.StatusBadRequest:
			chunk[0].status, chunk[0].reason = "failed", "refused: "+apiErr.Message
			rep.done(chunk[0])
		default:
			return err
		}
	}
	return nil
}

func createURLs(ctx context.Context, c *apiClient, items []*item, renditions string) error {
	urls := make([]string, len(items))
	for i, it := range items {
		urls[i] = it.source
	}
	body := map[string]any{"urls": urls, "process": true}
	if r := splitNames(renditions); len(r) > 0 {
		body["renditions"] = r
	}
	var res createdPhotos
	if err := c.do(ctx, http.MethodPost, "/photos", body, &res); err != nil {
		return err
	}
	if len(res.Photos) != len(items) {
		return fmt.Errorf("POST /photos: %d photos for %d URLs", len(res.Photos), len(items))
	}
	for i, p := range res.Photos {
		items[i].id, items[i].status = p.UUID, p.Status
	}
	return nil
}

func splitNames(s string) []string {
	var out []string
	for _, n := range strings.Split(s, ",") {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, n)
		}
	}
	return out
}

type photoState struct {
	Status  string `json:"status"`
	Failure *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"failure"`
	DeadLetter *struct {
		Service string `json:"service"`
		Reason  string `json:"reason"`
	} `json:"dead_letter"`
	Thumbnails []struct {
		FileURL string `json:"file_url"`
	} `json:"thumbnails"`
}

// waitFinal polls every unfinished photo each interval until all are
// final or ctx ends (the --timeout).
func waitFinal(ctx context.Context, c *apiClient, items []*item, interval time.Duration, rep *reporter) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		var open []*item
		for _, it := range items {
			if !it.final() {
				open = append(open, it)
			}
		}
		if len(open) == 0 {
			return nil
		}
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(pollsAtOnce)
		var throttled atomic.Bool
		for _, it := range open {
			g.Go(func() error {
				if throttled.Load() {
					return nil // asked too often: the rest of the round waits for the next tick
				}
				var p photoState
				if err := c.do(gctx, http.MethodGet, "/photos/"+url.PathEscape(it.id), nil, &p); err != nil {
					if busy(err) {
						throttled.Store(true)
						return nil
					}
					return err
				}
				rep.update(it, p)
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			if ctx.Err() != nil {
				return unfinished(items)
			}
			return err
		}
		select {
		case <-ctx.Done():
			return unfinished(items)
		case <-tick.C:
		}
	}
}

func unfinished(items []*item) error {
	var lines []string
	for _, it := range items {
		if !it.final() {
			l := fmt.Sprintf("  %s (%s): %s", it.source, it.id, it.status)
			if it.deadLetter != "" {
				l += ", waiting in a dead-letter queue: " + it.deadLetter
			}
			lines = append(lines, l)
		}
	}
	return fmt.Errorf("gave up waiting (--timeout) for %d photo(s):\n%s", len(lines), strings.Join(lines, "\n"))
}

// summarize prints every photo's thumbnails or failure, and returns an
// error when any failed.
func summarize(out io.Writer, c *apiClient, items []*item) error {
	failed := 0
	for _, it := range items {
		if it.status == "completed" {
			fmt.Fprintf(out, "completed  %s  %s\n", it.id, it.source)
			for _, t := range it.thumbnails {
				fmt.Fprintf(out, "  %s\n", c.absolute(t))
			}
			continue
		}
		failed++
		id := it.id
		if id == "" {
			id = "-"
		}
		fmt.Fprintf(out, "failed     %s  %s\n  %s\n", id, it.source, it.reason)
	}
	fmt.Fprintf(out, "%d completed, %d failed\n", len(items)-failed, failed)
	if failed > 0 {
		return fmt.Errorf("%d of %d photo(s) failed", failed, len(items))
	}
	return nil
}

// reporter shows progress: a bar on a terminal, a line per finished photo
// otherwise.
type reporter struct {
	mu       sync.Mutex
	out      io.Writer
	bar      *progressbar.ProgressBar
	finished int
	total    int
}

func newReporter(out io.Writer, mode string, total int) *reporter {
	r := &reporter{out: out, total: total}
	if mode == "auto" {
		mode = "plain"
		if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			mode = "bar"
		}
	}
	if mode == "bar" {
		r.bar = progressbar.NewOptions(total,
			progressbar.OptionSetWriter(out),
			progressbar.OptionSetDescription("uploading"),
			progressbar.OptionShowCount(),
			progressbar.OptionSetWidth(30),
			progressbar.OptionSetPredictTime(false),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	}
	return r
}

func (r *reporter) describe(s string) {
	if r.bar != nil {
		r.bar.Describe(s)
	}
}

// update records a photo's state and reports it when it became final or
// went to a dead-letter queue.
func (r *reporter) update(it *item, p photoState) {
	r.mu.Lock()
	defer r.mu.Unlock()
	it.status = p.Status
	if p.DeadLetter != nil {
		dl := p.DeadLetter.Service + ": " + p.DeadLetter.Reason
		if dl != it.deadLetter && r.bar == nil {
			fmt.Fprintf(r.out, "waiting    %s  %s  in the dead-letter queue of %s\n", it.id, it.source, dl)
		}
		it.deadLetter = dl
	} else {
		it.deadLetter = ""
	}
	switch it.status {
	case "completed":
		it.thumbnails = it.thumbnails[:0]
		for _, t := range p.Thumbnails {
			it.thumbnails = append(it.thumbnails, t.FileURL)
		}
	case "failed":
		it.reason = "failed"
		if p.Failure != nil {
			it.reason = p.Failure.Code + ": " + p.Failure.Message
		}
	default:
		return
	}
	r.doneLocked(it)
}

func (r *reporter) done(it *item) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.doneLocked(it)
}

func (r *reporter) doneLocked(it *item) {
	r.finished++
	if r.bar != nil {
		_ = r.bar.Set(r.finished)
		return
	}
	fmt.Fprintf(r.out, "[%d/%d] %-9s %s  %s\n", r.finished, r.total, it.status, orDash(it.id), it.source)
}

func (r *reporter) finish() {
	if r.bar != nil {
		_ = r.bar.Finish()
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
