package postgres

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/photopipe/photopipe/services/ingest-api/internal/app"
	"github.com/photopipe/photopipe/shared/database"
	"github.com/photopipe/photopipe/shared/event"
)

// TestRequestedPhotosAreProcessing: every write of a PhotoRequested (a
// create with process, an upload, a job's first photos) stores the photo
// processing that attempt, since the recorder no longer does; photos
// written without a request stay pending at attempt 0.
func TestRequestedPhotosAreProcessing(t *testing.T) {
	ctx := context.Background()
	db := mustOpenDB(t, 4)
	r := New(db, func() {})

	type state struct {
		Status                 database.Status
		Attempt, StatusAttempt int
	}
	processing := state{database.StatusProcessing, 1, 1}
	pending := state{database.StatusPending, 0, 0}
	read := func(t *testing.T, id string) state {
		t.Helper()
		var p database.Photo
		require.NoError(t, db.Take(&p, "uuid = ?", id).Error)
		require.Nil(t, p.FailureCode, "photo %s", id)
		require.Nil(t, p.DeadLetterService, "photo %s", id)
		return state{p.Status, p.Attempt, p.StatusAttempt}
	}
	// requested returns the attempt of each photo's PhotoRequested.
	requested := func(t *testing.T) map[string]int {
		t.Helper()
		var rows []database.OutboxMessage
		require.NoError(t, db.Find(&rows).Error)
		out := map[string]int{}
		for _, row := range rows {
			var e event.PhotoRequested
			require.NoError(t, json.Unmarshal(row.Payload, &e))
			out[e.PhotoID] = e.Attempt
		}
		return out
	}
	clearOutbox := func(t *testing.T) {
		t.Helper()
		require.NoError(t, db.Session(&gorm.Session{AllowGlobalUpdate: true}).Delete(&database.OutboxMessage{}).Error)
	}

	t.Run("create", func(t *testing.T) {
		clearOutbox(t)
		photos := []app.NewPhoto{{URL: "http://example.test/a.jpg", Renditions: []string{"thumb"}}}
		quiet, err := r.Create(ctx, photos, false, "corr")
		require.NoError(t, err)
		loud, err := r.Create(ctx, photos, true, "corr")
		require.NoError(t, err)
		require.Equal(t, "pending", quiet[0].Status)
		require.Equal(t, 0, quiet[0].Attempt)
		require.Equal(t, "processing", loud[0].Status, "the answer shows what is stored")
		require.Equal(t, 1, loud[0].Attempt)
		require.Equal(t, pending, read(t, quiet[0].UUID))
		require.Equal(t, processing, read(t, loud[0].UUID))
		require.Equal(t, map[string]int{loud[0].UUID: 1}, requested(t))
	})

	t.Run("uploads", func(t *testing.T) {
		clearOutbox(t)
		id := uuid.NewString()
		out, err := r.CreateUploads(ctx, []app.NewUpload{{UUID: id, Filename: "a.png", Key: "originals/" + id + "/a.png",
			ContentType: "image/png", Bytes: 9, Renditions: []string{"thumb"}}}, "corr")
		require.NoError(t, err)
		require.Equal(t, "processing", out[0].Status)
		require.Equal(t, 1, out[0].Attempt)
		require.Equal(t, processing, read(t, id))
		require.Equal(t, map[string]int{id: 1}, requested(t))
	})

	t.Run("job", func(t *testing.T) {
		clearOutbox(t)
		jobID, err := r.CreateJob(ctx, app.NewJob{Kind: "native", Renditions: []string{"thumb"}, Groups: []app.GroupInput{
			{Key: "S1", URLs: []string{"http://example.test/1.jpg", "http://example.test/2.jpg"}},
			{Key: "S2", URLs: []string{"http://example.test/3.jpg"}},
			{Key: "NOPE", URLs: []string{"http://example.test/4.jpg"}},
		}}, map[string]bool{"NOPE": true}, "corr")
		require.NoError(t, err)
		var photos []database.Photo
		require.NoError(t, db.Where("job_uuid = ?", jobID).Order("group_key, group_seq").Find(&photos).Error)
		require.Len(t, photos, 4)
		byURL := map[string]database.Photo{}
		for _, p := range photos {
			byURL[p.URL] = p
		}
		first, second, other := byURL["http://example.test/1.jpg"], byURL["http://example.test/2.jpg"], byURL["http://example.test/3.jpg"]
		require.Equal(t, processing, read(t, first.UUID), "a group's first photo is requested with the job")
		require.Equal(t, pending, read(t, second.UUID), "the rest wait for the recorder to request them")
		require.Equal(t, processing, read(t, other.UUID))
		skipped := byURL["http://example.test/4.jpg"]
		require.Equal(t, database.StatusFailed, skipped.Status, "an unknown store's photos are skipped")
		require.Equal(t, 0, skipped.Attempt)
		require.Equal(t, map[string]int{first.UUID: 1, other.UUID: 1}, requested(t))
	})
}
