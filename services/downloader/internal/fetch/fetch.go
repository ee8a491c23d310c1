// Package fetch downloads sources over HTTP with bounded time and size,
// refuses to connect to private and reserved addresses (SSRF), and
// classifies what goes wrong as event failures.
package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"time"

	"github.com/photopipe/photopipe/shared/event"
	"github.com/photopipe/photopipe/shared/netguard"
)

// Config bounds a Client.
type Config struct {
	MaxBytes       int64
	ConnectTimeout time.Duration
	HeaderTimeout  time.Duration
	Timeout        time.Duration
	MaxRedirects   int
	UserAgent      string
	// AllowedNetworks are ranges sources may be fetched from although they
	// are private or reserved (loopback in tests, an intranet image server).
	// Everything else outside the public internet is refused.
	AllowedNetworks []netip.Prefix
	// Downloaded, when set, counts the bytes read from sources.
	Downloaded interface{ Add(float64) }
}

// Client fetches URLs.
type Client struct {
	http   *http.Client
	dialer *net.Dialer
	cfg    Config
}

// New returns a Client bounded by cfg.
func New(cfg Config) *Client {
	// Every address dialled is checked, redirects' included (netguard).
	transport, dialer := netguard.Policy{Allowed: cfg.AllowedNetworks}.Transport(cfg.ConnectTimeout, cfg.HeaderTimeout, 8)
	return &Client{cfg: cfg, dialer: dialer, http: &http.Client{
		Transport: transport,
		Timeout:   cfg.Timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > cfg.MaxRedirects {
				return event.Fail(event.CodeDownloadError, "more than %d redirects", cfg.MaxRedirects)
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return event.Fail(event.CodeInvalidURL, "redirect to a %q URL", req.URL.Scheme)
			}
			return nil
		},
	}}
}

// Fetch starts downloading rawURL and returns its body, which yields at most
// MaxBytes and then fails with a too_large Failure. Errors are Failures:
// retryable for 5xx, 429, timeouts and network errors, permanent otherwise
// (blocked_address for a source, or a redirect, on a refused address).
func (c *Client) Fetch(ctx context.Context, rawURL string) (io.ReadCloser, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, event.Fail(event.CodeInvalidURL, "%q is not an http or https URL", rawURL)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, event.Fail(event.CodeInvalidURL, "%q: %v", rawURL, err)
	}
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	req.Header.Set("Accept", "image/*,application/pdf;q=0.9,*/*;q=0.1")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, classify(ctx, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		_ = resp.Body.Close()
		f := event.Fail(event.CodeDownloadHTTPStatus, "source answered %s", resp.Status)
		f.Retryable = resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout
		return nil, f
	}
	if resp.ContentLength > c.cfg.MaxBytes {
		_ = resp.Body.Close()
		return nil, event.Fail(event.CodeTooLarge, "source declares %d bytes, the limit is %d", resp.ContentLength, c.cfg.MaxBytes)
	}
	return &limitedBody{ctx: ctx, body: resp.Body, left: c.cfg.MaxBytes, limit: c.cfg.MaxBytes, counter: c.cfg.Downloaded}, nil
}

// classify turns a transport error into a Failure.
func classify(ctx context.Context, err error) error {
	if f, ok := event.AsFailure(err); ok {
		return f
	}
	var blocked *netguard.BlockedError
	if errors.As(err, &blocked) {
		return &event.Failure{Code: event.CodeBlockedAddress, Message: "the source " + blocked.Error()}
	}
	if ctx.Err() != nil {
		return ctx.Err() // the service is stopping: not the photo's fault
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &event.Failure{Code: event.CodeDownloadTimeout, Message: "source timed out", Retryable: true}
	}
	return &event.Failure{Code: event.CodeDownloadError, Message: fmt.Sprintf("fetch source: %v", unwrapURLError(err)), Retryable: true}
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// limitedBody enforces the byte limit while streaming and classifies read
// errors (a stalled or reset transfer) as Failures.
type limitedBody struct {
	ctx   context.Context
	body  io.ReadCloser
	left  int64
	limit int64
	// counter, when not nil, counts the bytes read.
	counter interface{ Add(float64) }
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One more byte would exceed the limit: look for it.
		var one [1]byte
		n, err := b.body.Read(one[:])
		if n > 0 {
			return 0, event.Fail(event.CodeTooLarge, "source sent more than %d bytes", b.limit)
		}
		if err == io.EOF {
			return 0, io.EOF
		}
		if err != nil {
			return 0, classify(b.ctx, err)
		}
		return 0, nil
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.body.Read(p)
	b.left -= int64(n)
	if b.counter != nil && n > 0 {
		b.counter.Add(float64(n))
	}
	if err != nil && err != io.EOF {
		err = classify(b.ctx, err)
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.body.Close() }
