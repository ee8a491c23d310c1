// Package webhook sends callbacks over HTTP: one signed JSON POST per try,
// bounded in time, never following redirects, and only to addresses the
// network guard allows (the same rules as downloads).
package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"time"

	"github.com/photopipe/photopipe/services/recorder/internal/app"
	"github.com/photopipe/photopipe/shared/bus"
	"github.com/photopipe/photopipe/shared/callback"
	"github.com/photopipe/photopipe/shared/netguard"
)

// ErrNoSecret is the error of every try while no signing secret is set:
// callbacks are never sent unsigned.
var ErrNoSecret = errors.New("not sent: CALLBACK_SECRET is not set, and callbacks are never sent unsigned")

// Config bounds a Client.
type Config struct {
	// Secret signs every body (HMAC-SHA256); empty refuses to send.
	Secret    []byte
	Timeout   time.Duration
	UserAgent string
	// AllowedNetworks are private or reserved ranges targets may be on.
	AllowedNetworks []netip.Prefix
}

// Client sends callbacks; it implements app.Sender.
type Client struct {
	http *http.Client
	cfg  Config
}

var _ app.Sender = (*Client)(nil)

// New returns a Client bounded by cfg.
func New(cfg Config) *Client {
	// Every address dialled is checked, after DNS (netguard).
	transport, _ := netguard.Policy{Allowed: cfg.AllowedNetworks}.Transport(cfg.Timeout, cfg.Timeout, 4)
	return &Client{cfg: cfg, http: &http.Client{
		Transport: transport,
		Timeout:   cfg.Timeout,
		// A redirect is answered, not followed: the 3xx is a failed try.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// maxResponseBytes is how much of a response is read (so that the
// connection can be reused) before it is closed.
const maxResponseBytes = 64 << 10

// Send POSTs d's payload to its URL, signed, and returns the response's
// status code. A non-2xx answer, a timeout or a network error is an error;
// a forbidden address, a malformed URL or a missing secret is a
// bus.Permanent one, since trying again cannot help.
func (c *Client) Send(ctx context.Context, d app.Delivery) (int, error) {
	if len(c.cfg.Secret) == 0 {
		return 0, bus.Permanent(ErrNoSecret)
	}
	u, err := url.Parse(d.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return 0, bus.Permanent(fmt.Errorf("%q is not an http or https URL", d.URL))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(d.Payload))
	if err != nil {
		return 0, bus.Permanent(fmt.Errorf("build request: %w", err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	req.Header.Set(callback.SignatureHeader, callback.Sign(c.cfg.Secret, d.Payload))
	req.Header.Set(callback.DeliveryHeader, d.ID)
	req.Header.Set(callback.AttemptHeader, strconv.Itoa(d.Attempt))
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, c.classify(err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBytes))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			return resp.StatusCode, fmt.Errorf("receiver answered %s (redirects are not followed)", resp.Status)
		}
		return resp.StatusCode, fmt.Errorf("receiver answered %s", resp.Status)
	}
	return resp.StatusCode, nil
}

// classify turns a transport error into the try's error.
func (c *Client) classify(err error) error {
	var blocked *netguard.BlockedError
	if errors.As(err, &blocked) {
		return bus.Permanent(fmt.Errorf("not sent: the target %w", blocked))
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("timed out after %s", c.cfg.Timeout)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("post: %w", err)
}

// CloseIdleConnections closes kept-alive connections (tests, shutdown).
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }
