package netguard

import (
	"net"
	"net/http"
	"time"
)

// Transport returns an HTTP transport that dials only what p allows, and
// the dialer it dials with. The check runs in the dialer's Control, after
// DNS and before connect, on every address dialled: redirects and DNS
// rebinding cannot pass it. No proxy is taken from the environment
// (HTTP_PROXY): a proxy would dial the target where the check cannot see.
func (p Policy) Transport(connectTimeout, headerTimeout time.Duration, idlePerHost int) (*http.Transport, *net.Dialer) {
	dialer := &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second, Control: p.Control}
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		TLSHandshakeTimeout:    connectTimeout,
		ResponseHeaderTimeout:  headerTimeout,
		MaxIdleConnsPerHost:    idlePerHost,
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: 64 << 10,
	}, dialer
}
