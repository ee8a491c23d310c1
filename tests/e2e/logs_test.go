package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLogsFollowOnePhoto sends one photo with a correlation id of the
// client's and follows it through the JSON logs of all four services:
// each has lines about it, and every line naming the photo carries its
// photo_id and that correlation_id.
func TestLogsFollowOnePhoto(t *testing.T) {
	env := NewEnv(t)
	src := ImageServer(t, map[string][]byte{"a.jpg": encodeJPEG(t, 640, 480)})
	api := env.StartPipeline(1)

	correlationID := "logs-test-" + uuid.NewString()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, api+"/photos",
		requestBody(t, map[string]any{"urls": []string{src.URL + "/a.jpg"}, "process": true}))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Correlation-ID", correlationID)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var created struct{ Photos []photo }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&created))
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.Len(t, created.Photos, 1)
	id := created.Photos[0].UUID
	require.Equal(t, "completed", waitFinal(t, api, []string{id}, 60*time.Second)[id].Status)

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		for _, name := range []string{"ingest-api", "downloader", "resizer", "recorder"} {
			for _, p := range env.Procs(name) {
				lines := photoLines(c, p, id)
				assert.NotEmpty(c, lines, "%s logged nothing about photo %s", name, id)
				for _, rec := range lines {
					assert.Equal(c, id, rec["photo_id"], "%s: %v", name, rec)
					assert.Equal(c, correlationID, rec["correlation_id"], "%s: %v", name, rec)
					assert.Equal(c, name, rec["service"], "%s: %v", name, rec)
				}
			}
		}
	}, 10*time.Second, 200*time.Millisecond)
}

// photoLines returns the log records of p that mention the photo id
// anywhere; each must be a JSON object.
func photoLines(c *assert.CollectT, p *proc, id string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(p.Output()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if !strings.Contains(sc.Text(), id) {
			continue
		}
		var rec map[string]any
		if assert.NoError(c, json.Unmarshal(sc.Bytes(), &rec), "%s: not JSON: %s", p.name, sc.Text()) {
			out = append(out, rec)
		}
	}
	return out
}
