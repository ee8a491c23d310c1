// Package logging builds the services' slog loggers. Attributes stored in a
// context with With (photo id, correlation id) are added to every record
// logged with that context, so one photo can be followed across services.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
)

// Config selects the output format and minimum level.
type Config struct {
	Format string // json or text (LOG_FORMAT)
	Level  string // debug, info, warn or error (LOG_LEVEL)
}

// New returns a logger writing to out, tagged with the service name.
func New(cfg Config, out io.Writer, service string) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.Level)); err != nil {
		return nil, fmt.Errorf("LOG_LEVEL: %q is not debug, info, warn or error", cfg.Level)
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch strings.ToLower(cfg.Format) {
	case "json", "":
		h = slog.NewJSONHandler(out, opts)
	case "text":
		h = slog.NewTextHandler(out, opts)
	default:
		return nil, fmt.Errorf("LOG_FORMAT: %q is neither json nor text", cfg.Format)
	}
	return slog.New(ctxHandler{h}).With(slog.String("service", service)), nil
}

type ctxKey struct{}

// With returns a context whose log records carry attrs, after any the
// context already had. An attribute replaces an earlier one with the same
// key (the bus and the handler both add photo_id), so no record carries a
// key twice.
func With(ctx context.Context, attrs ...slog.Attr) context.Context {
	prev, _ := ctx.Value(ctxKey{}).([]slog.Attr)
	all := make([]slog.Attr, 0, len(prev)+len(attrs))
	for _, a := range prev {
		if !slices.ContainsFunc(attrs, func(b slog.Attr) bool { return b.Key == a.Key }) {
			all = append(all, a)
		}
	}
	all = append(all, attrs...)
	return context.WithValue(ctx, ctxKey{}, all)
}

// ctxHandler adds the attributes stored by With to each record.
type ctxHandler struct{ slog.Handler }

func (h ctxHandler) Handle(ctx context.Context, r slog.Record) error {
	if attrs, ok := ctx.Value(ctxKey{}).([]slog.Attr); ok {
		r.AddAttrs(attrs...)
	}
	return h.Handler.Handle(ctx, r)
}

func (h ctxHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return ctxHandler{h.Handler.WithAttrs(attrs)}
}

func (h ctxHandler) WithGroup(name string) slog.Handler {
	return ctxHandler{h.Handler.WithGroup(name)}
}
