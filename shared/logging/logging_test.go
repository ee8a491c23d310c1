package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestContextAttrsReachRecords(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log, err := New(Config{Format: "json", Level: "info"}, &buf, "resizer")
	require.NoError(t, err)
	ctx := With(context.Background(), slog.String("photo_id", "p1"))
	ctx = With(ctx, slog.String("correlation_id", "c1"))
	log.InfoContext(ctx, "thumbnail stored")
	var rec map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &rec))
	require.Equal(t, "resizer", rec["service"])
	require.Equal(t, "p1", rec["photo_id"])
	require.Equal(t, "c1", rec["correlation_id"])
}

func TestBadSettings(t *testing.T) {
	t.Parallel()
	_, err := New(Config{Format: "xml", Level: "info"}, &bytes.Buffer{}, "x")
	require.ErrorContains(t, err, "LOG_FORMAT")
	_, err = New(Config{Format: "json", Level: "loud"}, &bytes.Buffer{}, "x")
	require.ErrorContains(t, err, "LOG_LEVEL")
}

func TestWithReplacesKeys(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log, err := New(Config{Format: "json", Level: "info"}, &buf, "downloader")
	require.NoError(t, err)
	ctx := With(context.Background(), slog.String("correlation_id", "c1"), slog.String("photo_id", "p1"))
	ctx = With(ctx, slog.String("photo_id", "p2"), slog.Int("attempt", 2))
	log.InfoContext(ctx, "original stored")
	require.Equal(t, 1, bytes.Count(buf.Bytes(), []byte(`"photo_id"`)), buf.String())
	var rec map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &rec))
	require.Equal(t, "p2", rec["photo_id"])
	require.Equal(t, "c1", rec["correlation_id"])
	require.InDelta(t, 2, rec["attempt"], 0)
}
