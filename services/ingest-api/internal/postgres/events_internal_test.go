package postgres

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/services/ingest-api/internal/app"
	"github.com/photopipe/photopipe/shared/database"
	"github.com/photopipe/photopipe/shared/event"
)

// TestStartAttemptsEvents: the PhotoRequested that the statement of POST
// /photos/process writes (the photo's fields filled in by SQL) is the
// event requested() builds in Go from the photo as it is after the
// request, field for field, whatever the photo holds.
func TestStartAttemptsEvents(t *testing.T) {
	ctx := context.Background()
	db := mustOpenDB(t, 4)
	r := New(db, func() {})
	key := "originals/x/scan <1> & \"2\".pdf"
	cases := []struct {
		name  string
		photo database.Photo
		opts  app.ProcessOptions
	}{
		{"by URL", database.Photo{URL: "http://example.test/a.jpg", Status: database.StatusPending, Renditions: []string{"thumb"}}, app.ProcessOptions{}},
		{"by URL, downloaded before", database.Photo{URL: "http://example.test/b.jpg?x=1&y=<2>", Status: database.StatusFailed,
			OriginalKey: &key, Filename: "b.jpg", Renditions: []string{"thumb", "preview"}}, app.ProcessOptions{}},
		{"upload", database.Photo{Status: database.StatusPending, OriginalKey: &key, Filename: "scan <1> & \"2\" é.pdf",
			Renditions: []string{"preview"}}, app.ProcessOptions{}},
		{"new renditions", database.Photo{URL: "http://example.test/c.jpg", Status: database.StatusCompleted,
			Renditions: []string{"thumb"}}, app.ProcessOptions{Renditions: []string{"small", "square100"}, Reprocess: true}},
		{"no renditions stored", database.Photo{URL: "http://example.test/d.jpg", Status: database.StatusPending, Renditions: []string{}}, app.ProcessOptions{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.photo
			require.NoError(t, db.Create(&p).Error)
			res, err := r.RequestProcessing(ctx, []string{p.UUID}, tc.opts, "corr")
			require.NoError(t, err)
			require.Equal(t, app.OutcomeQueued, res[0].Outcome)

			var row database.OutboxMessage
			require.NoError(t, db.Where("convert_from(payload, 'UTF8') LIKE ?", "%"+p.UUID+"%").Take(&row).Error)
			var got map[string]any
			require.NoError(t, json.Unmarshal(row.Payload, &got))
			var after database.Photo
			require.NoError(t, db.Take(&after, "uuid = ?", p.UUID).Error)
			b, err := json.Marshal(requested(after))
			require.NoError(t, err)
			var want map[string]any
			require.NoError(t, json.Unmarshal(b, &want))

			// Each event has its own id and time.
			for _, k := range []string{"event_id", "occurred_at"} {
				require.NotEmpty(t, got[k], k)
				delete(got, k)
				delete(want, k)
			}
			require.Equal(t, want, got, "payload %s", row.Payload)
			var e event.PhotoRequested
			require.NoError(t, json.Unmarshal(row.Payload, &e), "the event decodes")
			require.WithinDuration(t, time.Now(), e.OccurredAt, time.Minute)
		})
	}
}
