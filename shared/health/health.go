// Package health serves /healthz (the process is alive) and /readyz (its
// dependencies answer), and probes them for container healthchecks.
package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// Check reports whether one dependency is usable.
type Check struct {
	Name string
	Func func(ctx context.Context) error
}

// Register serves /healthz and /readyz on mux.
func Register(mux interface {
	Handle(pattern string, h http.Handler)
}, checks ...Check) {
	mux.Handle("/healthz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
	}))
	mux.Handle("/readyz", ReadyHandler(checks...))
}

// ReadyHandler runs every check (each bounded to 2 s) and answers 200 when
// all pass, 503 naming the failures otherwise.
func ReadyHandler(checks ...Check) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		results := map[string]string{}
		ok := true
		for _, c := range checks {
			ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			err := c.Func(ctx)
			cancel()
			if err != nil {
				ok = false
				results[c.Name] = err.Error()
			} else {
				results[c.Name] = "ok"
			}
		}
		status, code := "ready", http.StatusOK
		if !ok {
			status, code = "not_ready", http.StatusServiceUnavailable
		}
		writeJSON(w, code, map[string]any{"status": status, "checks": results})
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// Route is one more endpoint of the health server (/metrics).
type Route struct {
	Pattern string
	Handler http.Handler
}

// Serve runs a server for the health endpoints, and routes, on addr until
// ctx ends. An empty addr serves nothing. The bound address is sent on
// bound, if given.
func Serve(ctx context.Context, addr string, checks []Check, bound chan<- string, routes ...Route) error {
	if addr == "" {
		return nil
	}
	mux := http.NewServeMux()
	Register(mux, checks...)
	for _, r := range routes {
		mux.Handle(r.Pattern, r.Handler)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("health listen %s: %w", addr, err)
	}
	if bound != nil {
		bound <- ln.Addr().String()
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("health server: %w", err)
	}
	return nil
}

// Probe asks the /readyz endpoint at addr (":8081" or "host:port") and
// returns nil when it answers 200: the container healthcheck subcommand.
func Probe(ctx context.Context, addr string) error {
	if addr == "" {
		return errors.New("HEALTH_ADDR is empty: no health endpoint to probe")
	}
	if strings.HasPrefix(addr, ":") {
		addr = "127.0.0.1" + addr
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("probe %s: %w", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("probe %s: status %d", addr, resp.StatusCode)
	}
	return nil
}
