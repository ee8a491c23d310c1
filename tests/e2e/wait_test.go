package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stated is a test's view of a photo: anything with a status.
type stated interface{ state() string }

func (p photo) state() string         { return p.Status }
func (p detailedPhoto) state() string { return p.Status }
func (p hostilePhoto) state() string  { return p.Status }

// pollFinal fetches each photo with get (GET /photos/{id} into out, returning
// the HTTP status) until every one is completed or failed, and returns them
// by id.
func pollFinal[T stated](tb testing.TB, get func(id string, out *T) int, ids []string, timeout time.Duration) map[string]T {
	tb.Helper()
	final := func(s string) bool { return s == "completed" || s == "failed" }
	out := map[string]T{}
	require.EventuallyWithT(tb, func(c *assert.CollectT) {
		for _, id := range ids {
			if p, ok := out[id]; ok && final(p.state()) {
				continue
			}
			var p T
			if !assert.Equal(c, http.StatusOK, get(id, &p)) {
				return
			}
			out[id] = p
			assert.True(c, final(p.state()), "photo %s is %s", id, p.state())
		}
	}, timeout, 100*time.Millisecond)
	return out
}

// requestBody turns a request body into a reader: nil for none, a string as
// it is, anything else marshalled.
func requestBody(tb testing.TB, body any) io.Reader {
	tb.Helper()
	switch b := body.(type) {
	case nil:
		return nil
	case string:
		return strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		require.NoError(tb, err)
		return bytes.NewReader(raw)
	}
}
