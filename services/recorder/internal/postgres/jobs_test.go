package postgres_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/photopipe/photopipe/services/recorder/internal/postgres"
	"github.com/photopipe/photopipe/shared/database"
	"github.com/photopipe/photopipe/shared/event"
)

// newJob makes a job of one group of n photos, its first one requested
// (attempt 1, processing), as the ingest-api creates it.
func newJob(t *testing.T, db *gorm.DB, n int) (string, []string) {
	t.Helper()
	job := database.Job{Kind: "native", Total: n, GroupsTotal: 1, Status: database.JobOngoing}
	require.NoError(t, db.Create(&job).Error)
	key := "S"
	require.NoError(t, db.Create(&database.JobGroup{JobUUID: job.UUID, GroupKey: key, Status: database.JobOngoing, Total: n}).Error)
	ids := make([]string, n)
	for i := range ids {
		seq := i
		p := database.Photo{URL: fmt.Sprintf("http://example.test/%d.jpg", i), Status: database.StatusPending,
			Renditions: []string{"thumb"}, JobUUID: &job.UUID, GroupKey: &key, GroupSeq: &seq}
		if i == 0 {
			p.Status, p.Attempt, p.StatusAttempt = database.StatusProcessing, 1, 1
		}
		require.NoError(t, db.Create(&p).Error)
		ids[i] = p.UUID
	}
	return job.UUID, ids
}

// jobState is the job's counters and its group's, and each photo's status
// and attempt.
func jobState(t *testing.T, db *gorm.DB, job string, ids []string) string {
	t.Helper()
	var j database.Job
	require.NoError(t, db.Take(&j, "uuid = ?", job).Error)
	var g database.JobGroup
	require.NoError(t, db.Take(&g, "job_uuid = ?", job).Error)
	out := fmt.Sprintf("job %s c=%d f=%d s=%d groups=%d/%d; group %s done=%d/%d;", j.Status, j.Completed, j.Failed, j.Skipped,
		j.GroupsFinished, j.GroupsTotal, g.Status, g.Done, g.Total)
	for _, id := range ids {
		var p database.Photo
		require.NoError(t, db.Take(&p, "uuid = ?", id).Error)
		out += fmt.Sprintf(" %s/%d", p.Status, p.Attempt)
	}
	return out
}

// requestAgain moves a photo to its next attempt, as a processing request
// does.
func requestAgain(t *testing.T, db *gorm.DB, id string) int {
	t.Helper()
	var attempt int
	require.NoError(t, db.Raw(`UPDATE photos SET attempt = attempt + 1, status_attempt = attempt + 1, status = 'processing'
		WHERE uuid = ? RETURNING attempt`, id).Scan(&attempt).Error)
	return attempt
}

// TestOnlyTheCurrentPhotoMovesItsGroup: another attempt of a job's photo
// (one processed again; the ingest-api refuses that while the job runs,
// but not once it has finished) ends without touching the job: no count
// twice, no group finished early, no photo left unrequested.
func TestOnlyTheCurrentPhotoMovesItsGroup(t *testing.T) {
	db := postgres.MustOpenDB(t)
	repo := postgres.New(db, func() {}, func() {})
	ctx := context.Background()

	t.Run("an earlier photo completes again while the group runs", func(t *testing.T) {
		job, ids := newJob(t, db, 3)
		_, err := repo.Complete(ctx, created(ids[0], 1, 10, 10))
		require.NoError(t, err)
		require.Equal(t, "job ongoing c=1 f=0 s=0 groups=0/1; group ongoing done=1/3; completed/1 processing/1 pending/0", jobState(t, db, job, ids))
		ok, err := repo.Complete(ctx, created(ids[0], requestAgain(t, db, ids[0]), 10, 10))
		require.NoError(t, err)
		require.True(t, ok, "the photo completes its new attempt")
		require.Equal(t, "job ongoing c=1 f=0 s=0 groups=0/1; group ongoing done=1/3; completed/2 processing/1 pending/0", jobState(t, db, job, ids))
		for _, id := range ids[1:] {
			_, err = repo.Complete(ctx, created(id, 1, 10, 10))
			require.NoError(t, err)
		}
		require.Equal(t, "job completed c=3 f=0 s=0 groups=1/1; group completed done=3/3; completed/2 completed/1 completed/1", jobState(t, db, job, ids))
	})

	t.Run("a photo that ends ahead of its turn changes nothing", func(t *testing.T) {
		job, ids := newJob(t, db, 3)
		_, err := repo.Fail(ctx, failed(ids[2], requestAgain(t, db, ids[2]), event.CodeDownloadHTTPStatus))
		require.NoError(t, err)
		require.Equal(t, "job ongoing c=0 f=0 s=0 groups=0/1; group ongoing done=0/3; processing/1 pending/0 failed/1", jobState(t, db, job, ids))
	})

	t.Run("a failed group's photo processed again after the job ended", func(t *testing.T) {
		job, ids := newJob(t, db, 2)
		_, err := repo.Fail(ctx, failed(ids[0], 1, event.CodeDownloadTimeout))
		require.NoError(t, err)
		want := "job failed c=0 f=1 s=1 groups=1/1; group failed done=2/2;"
		require.Equal(t, want+" failed/1 failed/0", jobState(t, db, job, ids))
		for _, id := range ids {
			ok, err := repo.Complete(ctx, created(id, requestAgain(t, db, id), 10, 10))
			require.NoError(t, err)
			require.True(t, ok)
		}
		require.Equal(t, want+" completed/2 completed/1", jobState(t, db, job, ids), "the job's result stands")
	})
}
