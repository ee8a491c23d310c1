package postgres

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/services/ingest-api/internal/app"
	"github.com/photopipe/photopipe/shared/database"
)

// TestJobPhotosAreTheirJobs: while a job runs, its groups request its
// photos in order: GET /photos/pending leaves them out and POST
// /photos/process answers in_job and writes nothing for them (a photo
// requested out of turn would run ahead of its group, or never be
// requested by it). Once the job has finished, they can be processed
// again like any photo.
func TestJobPhotosAreTheirJobs(t *testing.T) {
	ctx := context.Background()
	db := mustOpenDB(t, 4)
	r := New(db, func() {})
	alone := database.Photo{URL: "http://example.test/alone.jpg", Status: database.StatusPending, Renditions: []string{"thumb"}}
	require.NoError(t, db.Create(&alone).Error)
	job, err := r.CreateJob(ctx, app.NewJob{Kind: "native", Renditions: []string{"thumb"},
		Groups: []app.GroupInput{{Key: "S", URLs: []string{"http://example.test/0.jpg", "http://example.test/1.jpg", "http://example.test/2.jpg"}}}}, nil, "c")
	require.NoError(t, err)
	var ps []database.Photo
	require.NoError(t, db.Where("job_uuid = ?", job).Order("group_seq").Find(&ps).Error)
	require.Len(t, ps, 3)
	require.Equal(t, database.StatusProcessing, ps[0].Status, "the job requested its first photo")

	pending, err := r.ListPending(ctx, "", 100)
	require.NoError(t, err)
	require.Len(t, pending, 1, "only the photo of no job")
	require.Equal(t, alone.UUID, pending[0].UUID)

	outbox := func() int64 {
		var n int64
		require.NoError(t, db.Table("outbox").Count(&n).Error)
		return n
	}
	before := outbox()
	res, err := r.RequestProcessing(ctx, []string{ps[1].UUID, ps[2].UUID, alone.UUID}, app.ProcessOptions{Reprocess: true}, "c")
	require.NoError(t, err)
	require.Equal(t, []app.ProcessResult{
		{UUID: ps[1].UUID, Outcome: app.OutcomeInJob},
		{UUID: ps[2].UUID, Outcome: app.OutcomeInJob},
		{UUID: alone.UUID, Outcome: app.OutcomeQueued, Attempt: 1},
	}, res)
	require.Equal(t, before+1, outbox(), "one PhotoRequested: the photo of no job")
	var p1 database.Photo
	require.NoError(t, db.Take(&p1, "uuid = ?", ps[1].UUID).Error)
	require.Equal(t, database.StatusPending, p1.Status)
	require.Zero(t, p1.Attempt)

	// The job ends (its first photo failed, the others were skipped): its
	// photos can be processed again.
	require.NoError(t, db.Exec(`UPDATE photos SET status = 'failed', status_attempt = attempt WHERE job_uuid = ?`, job).Error)
	require.NoError(t, db.Exec(`UPDATE jobs SET status = 'failed' WHERE uuid = ?`, job).Error)
	res, err = r.RequestProcessing(ctx, []string{ps[1].UUID}, app.ProcessOptions{}, "c")
	require.NoError(t, err)
	require.Equal(t, []app.ProcessResult{{UUID: ps[1].UUID, Outcome: app.OutcomeQueued, Attempt: 1}}, res)
}
