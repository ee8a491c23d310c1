package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/shared/testenv"
)

type deadLetterPhoto struct {
	UUID       string `json:"uuid"`
	Status     string `json:"status"`
	DeadLetter *struct {
		Service, Queue, Reason string
	} `json:"dead_letter"`
	Thumbnails []struct{ URL string } `json:"thumbnails"`
}

type dlList struct {
	Summary struct {
		Service string
		Count   int
		Reasons map[string]int
	}
	Entries []struct {
		MessageID      string `json:"message_id"`
		PhotoID        string `json:"photo_id"`
		CorrelationID  string `json:"correlation_id"`
		Queue          string `json:"queue"`
		Handler        string `json:"handler"`
		Reason         string `json:"reason"`
		DeadLetteredAt string `json:"dead_lettered_at"`
	}
}

// TestDeadLetterAndReplay breaks the resizer's storage (a transient
// failure), watches the photos land in its dead-letter queue and show it,
// repairs the storage, replays some by id and the rest all at once, and
// checks that every photo completes with exactly one thumbnail.
func TestDeadLetterAndReplay(t *testing.T) {
	env := NewEnv(t)
	env.Extra["RETRY_MAX"] = "2"
	env.Extra["RETRY_INITIAL"] = "20ms"
	env.Extra["RETRY_MAX_INTERVAL"] = "50ms"
	src := ImageServer(t, map[string][]byte{"a.jpg": encodeJPEG(t, 800, 600)})
	api := env.StartPipeline(1)

	// Thumbnails cannot be written while "thumbnails" is a plain file.
	blocker := filepath.Join(env.Storage, "thumbnails")
	require.NoError(t, os.WriteFile(blocker, []byte("in the way"), 0o644))

	urls := make([]string, 6)
	for i := range urls {
		urls[i] = src.URL + "/a.jpg?n=" + string(rune('a'+i))
	}
	var created struct{ Photos []struct{ UUID string } }
	require.Equal(t, http.StatusCreated, Call(t, http.MethodPost, api+"/photos", map[string]any{"urls": urls, "process": true}, &created))
	ids := make([]string, len(created.Photos))
	for i, p := range created.Photos {
		ids[i] = p.UUID
	}

	// Every photo waits in the resizer's dead-letter queue, and says so.
	var list dlList
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, http.StatusOK, Call(t, http.MethodGet, api+"/admin/dead-letters/resizer?limit=100", nil, &list))
		assert.Len(c, list.Entries, len(ids))
	}, 60*time.Second, 200*time.Millisecond)
	assert.Equal(t, len(ids), list.Summary.Count)
	// One cause, however many photos (the reasons name their keys).
	assert.Len(t, list.Summary.Reasons, 1, "%v", list.Summary.Reasons)
	for reason, n := range list.Summary.Reasons {
		assert.Equal(t, len(ids), n)
		assert.Contains(t, reason, "<id>")
		for _, id := range ids {
			assert.NotContains(t, reason, id)
		}
	}
	for _, e := range list.Entries {
		assert.Contains(t, ids, e.PhotoID)
		assert.Equal(t, "PhotoDownloaded_resizer", e.Queue)
		assert.Equal(t, "resizer.render", e.Handler, "the handler's name, as metrics give it")
		assert.Contains(t, e.Reason, "store rendition") // the storage refused the write (local or S3)
		assert.NotEmpty(t, e.CorrelationID)
		assert.NotEmpty(t, e.DeadLetteredAt)
	}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		for _, id := range ids {
			var p deadLetterPhoto
			assert.Equal(c, http.StatusOK, Call(t, http.MethodGet, api+"/photos/"+id, nil, &p))
			if assert.NotNil(c, p.DeadLetter, "photo %s shows its dead letter", id) {
				assert.Equal(c, "resizer", p.DeadLetter.Service)
				assert.Equal(c, "PhotoDownloaded_resizer", p.DeadLetter.Queue)
			}
			assert.Equal(c, "processing", p.Status)
		}
	}, 30*time.Second, 200*time.Millisecond)

	var all struct {
		Queues []struct {
			Service string
			Count   int
		}
	}
	require.Equal(t, http.StatusOK, Call(t, http.MethodGet, api+"/admin/dead-letters", nil, &all))
	counts := map[string]int{}
	for _, q := range all.Queues {
		counts[q.Service] = q.Count
	}
	assert.Equal(t, map[string]int{"downloader": 0, "resizer": len(ids), "recorder": 0}, counts)

	// Bad requests get clear errors.
	assert.Equal(t, http.StatusNotFound, Call(t, http.MethodGet, api+"/admin/dead-letters/nobody", nil, nil))
	assert.Equal(t, http.StatusBadRequest, Call(t, http.MethodPost, api+"/admin/dead-letters/resizer/replay", map[string]any{}, nil))
	assert.Equal(t, http.StatusBadRequest, Call(t, http.MethodPost, api+"/admin/dead-letters/resizer/replay", "{", nil))
	assert.Equal(t, http.StatusBadRequest, Call(t, http.MethodPost, api+"/admin/dead-letters/resizer/discard",
		map[string]any{"photo_ids": []string{"zz"}}, nil))

	// Repair, then replay two by message id and the rest at once.
	require.NoError(t, os.Remove(blocker))
	var res struct{ Replayed int }
	require.Equal(t, http.StatusOK, Call(t, http.MethodPost, api+"/admin/dead-letters/resizer/replay",
		map[string]any{"message_ids": []string{list.Entries[0].MessageID, list.Entries[1].MessageID}}, &res))
	assert.Equal(t, 2, res.Replayed)
	// The first replay's session waits until the queue has taken back
	// what it left (a quorum queue does so asynchronously), so a replay at
	// once finds them all.
	require.Equal(t, http.StatusOK, Call(t, http.MethodPost, api+"/admin/dead-letters/resizer/replay", map[string]any{"all": true}, &res))
	assert.Equal(t, len(ids)-2, res.Replayed)

	final := waitFinal(t, api, ids, 60*time.Second)
	for _, id := range ids {
		assert.Equal(t, "completed", final[id].Status)
	}
	for _, id := range ids {
		var p deadLetterPhoto
		require.Equal(t, http.StatusOK, Call(t, http.MethodGet, api+"/photos/"+id, nil, &p))
		assert.Nil(t, p.DeadLetter, "the mark is cleared once the photo moves on")
	}

	// Exactly one thumbnail row per photo, each replayed message was
	// rendered once (the recorder completed each photo once), and the
	// queue is empty.
	conn, err := pgx.Connect(t.Context(), env.DB)
	require.NoError(t, err)
	defer conn.Close(t.Context())
	var rows, photos int
	require.NoError(t, conn.QueryRow(t.Context(), "SELECT count(*), count(DISTINCT photo_uuid) FROM photo_thumbnails").Scan(&rows, &photos))
	assert.Equal(t, len(ids), rows)
	assert.Equal(t, len(ids), photos)
	rec := env.Procs("recorder")[0]
	assert.Equal(t, len(ids), rec.CountLines(`"event":"ThumbnailCreated"`, "photo state recorded"),
		"each replayed message is rendered once")
	require.Equal(t, http.StatusOK, Call(t, http.MethodGet, api+"/admin/dead-letters/resizer", nil, &list))
	assert.Zero(t, list.Summary.Count)

	// Discard works too: break again, dead-letter one photo, discard it;
	// the photo's attempt ends failed (it waited for that message), and a
	// new attempt, once the storage is repaired, completes.
	require.NoError(t, os.Rename(blocker, blocker+".moved"))
	require.NoError(t, os.WriteFile(blocker, []byte("in the way"), 0o644))
	var again struct{ Photos []struct{ UUID string } }
	require.Equal(t, http.StatusCreated, Call(t, http.MethodPost, api+"/photos", map[string]any{"urls": []string{src.URL + "/a.jpg?n=z"}, "process": true}, &again))
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, http.StatusOK, Call(t, http.MethodGet, api+"/admin/dead-letters/resizer", nil, &list))
		assert.Len(c, list.Entries, 1)
	}, 60*time.Second, 200*time.Millisecond)
	var dres map[string]int
	require.Equal(t, http.StatusOK, Call(t, http.MethodPost, api+"/admin/dead-letters/resizer/discard",
		map[string]any{"photo_ids": []string{strings.ToUpper(again.Photos[0].UUID)}}, &dres))
	assert.Equal(t, map[string]int{"discarded": 1}, dres)
	require.Equal(t, http.StatusOK, Call(t, http.MethodGet, api+"/admin/dead-letters/resizer", nil, &list))
	assert.Zero(t, list.Summary.Count)
	id := again.Photos[0].UUID
	var failed struct {
		Status  string
		Failure struct {
			Stage, Code, Message string
			Retryable            bool
		}
		DeadLetter any `json:"dead_letter"`
	}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, http.StatusOK, Call(t, http.MethodGet, api+"/photos/"+id, nil, &failed))
		assert.Equal(c, "failed", failed.Status)
	}, 30*time.Second, 100*time.Millisecond)
	assert.Equal(t, "resize", failed.Failure.Stage)
	assert.Equal(t, "discarded", failed.Failure.Code)
	assert.True(t, failed.Failure.Retryable)
	assert.Contains(t, failed.Failure.Message, "store rendition")
	assert.Nil(t, failed.DeadLetter)
	require.NoError(t, os.Remove(blocker))
	require.Equal(t, http.StatusAccepted, Call(t, http.MethodPost, api+"/photos/process", map[string]any{"uuids": []string{id}}, nil))
	assert.Equal(t, "completed", waitFinal(t, api, []string{id}, 60*time.Second)[id].Status)
}

// TestBrokerDropIsMarked: a message the broker itself dead-letters (here a
// max-length policy on the downloader's queue pushes the oldest out) tells
// no service, yet its photo shows where it waits, with the broker's reason,
// instead of looking processing forever; replayed, it completes and the
// mark goes.
func TestBrokerDropIsMarked(t *testing.T) {
	if !lastPass() {
		t.Skip("the broker's part does not depend on the storage backend")
	}
	env := NewEnv(t)
	src := ImageServer(t, map[string][]byte{"a.jpg": encodeJPEG(t, 64, 48)})
	env.APIAddr = FreeAddr(t)
	api := "http://" + env.APIAddr
	env.Start("ingest-api", "HTTP_ADDR="+env.APIAddr)
	env.Start("recorder")
	env.Start("resizer")
	// No downloader yet: its queue fills up, and the broker drops the oldest.
	unlimit := testenv.QueuePolicy(t, env.AMQP, "photo-processor", "e2e-limit", `{"max-length":1}`)
	var created struct{ Photos []struct{ UUID string } }
	require.Equal(t, http.StatusCreated, Call(t, http.MethodPost, api+"/photos",
		map[string]any{"urls": []string{src.URL + "/a.jpg?n=1", src.URL + "/a.jpg?n=2"}, "process": true}, &created))
	ids := []string{created.Photos[0].UUID, created.Photos[1].UUID}

	marked := map[string]deadLetterPhoto{}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		for _, id := range ids {
			var p deadLetterPhoto
			assert.Equal(c, http.StatusOK, Call(t, http.MethodGet, api+"/photos/"+id, nil, &p))
			if p.DeadLetter != nil {
				marked[id] = p
			}
		}
		assert.Len(c, marked, 1, "one photo's message was dropped")
	}, 30*time.Second, 100*time.Millisecond)
	for _, p := range marked {
		assert.Equal(t, "processing", p.Status)
		assert.Equal(t, "downloader", p.DeadLetter.Service)
		assert.Equal(t, "photo-processor", p.DeadLetter.Queue)
		assert.Equal(t, "dropped by the broker from queue photo-processor: the queue was full (a max-length limit)", p.DeadLetter.Reason)
	}
	var list dlList
	require.Equal(t, http.StatusOK, Call(t, http.MethodGet, api+"/admin/dead-letters/downloader", nil, &list))
	require.Len(t, list.Entries, 1)
	assert.Contains(t, marked, list.Entries[0].PhotoID, "the marked photo's message is the one waiting")

	unlimit()
	env.Start("downloader")
	var res struct{ Replayed int }
	require.Equal(t, http.StatusOK, Call(t, http.MethodPost, api+"/admin/dead-letters/downloader/replay", map[string]any{"all": true}, &res))
	assert.Equal(t, 1, res.Replayed)
	final := waitFinal(t, api, ids, 60*time.Second)
	for _, id := range ids {
		assert.Equal(t, "completed", final[id].Status)
		var p deadLetterPhoto
		require.Equal(t, http.StatusOK, Call(t, http.MethodGet, api+"/photos/"+id, nil, &p))
		assert.Nil(t, p.DeadLetter, "the mark is cleared once the photo completes")
	}
}
