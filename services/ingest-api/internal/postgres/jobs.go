package postgres

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"github.com/photopipe/photopipe/services/ingest-api/internal/app"
	"github.com/photopipe/photopipe/shared/callback"
	"github.com/photopipe/photopipe/shared/database"
	"github.com/photopipe/photopipe/shared/event"
	"github.com/photopipe/photopipe/shared/outbox"
)

var _ app.JobRepository = (*Repository)(nil)

// CreateJob inserts the job, its groups and photos, and the PhotoRequested
// of the first photo of every group, in one transaction. The first photos
// are processing attempt 1 from the start; the others stay pending (attempt
// 0) until the recorder requests them in turn (and marks them processing).
// Groups whose store is unknown are failed at once and their photos skipped.
func (r *Repository) CreateJob(ctx context.Context, in app.NewJob, unknown map[string]bool, correlationID string) (string, error) {
	total := 0
	for _, g := range in.Groups {
		total += len(g.URLs)
	}
	job := database.Job{Kind: in.Kind, Total: total, GroupsTotal: len(in.Groups), Status: database.JobOngoing}
	if in.CallbackURL != "" {
		job.CallbackURL = &in.CallbackURL
	}
	err := r.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		for _, g := range in.Groups {
			if unknown[g.Key] {
				job.Skipped += len(g.URLs)
				job.GroupsFinished++
				job.GroupsFailed++
			}
		}
		if job.GroupsFinished == job.GroupsTotal {
			job.Status = database.JobFailed
		}
		if err := tx.Create(&job).Error; err != nil {
			return fmt.Errorf("insert job: %w", err)
		}
		var photos []database.Photo
		var groups []database.JobGroup
		for _, g := range in.Groups {
			group := database.JobGroup{JobUUID: job.UUID, GroupKey: g.Key, Status: database.JobOngoing, Total: len(g.URLs)}
			if g.VisitTime != "" {
				group.VisitTime = &g.VisitTime
			}
			if unknown[g.Key] {
				msg := app.ErrStoreNotFound
				group.Status, group.Error, group.Done = database.JobFailed, &msg, len(g.URLs)
			}
			groups = append(groups, group)
			for seq, u := range g.URLs {
				p := database.Photo{
					URL: u, Status: database.StatusPending, Renditions: in.Renditions,
					JobUUID: &job.UUID, GroupKey: &g.Key, GroupSeq: &seq,
				}
				if unknown[g.Key] {
					code, msg, stage, no := database.SkippedCode, "not processed: "+app.ErrStoreNotFound, "job", false
					p.Status, p.FailureCode, p.FailureMessage, p.FailureStage, p.FailureRetryable = database.StatusFailed, &code, &msg, &stage, &no
				} else if seq == 0 {
					startFirstAttempt(&p)
				}
				photos = append(photos, p)
			}
		}
		if err := tx.CreateInBatches(&groups, 500).Error; err != nil {
			return fmt.Errorf("insert groups: %w", err)
		}
		if err := tx.CreateInBatches(&photos, 500).Error; err != nil {
			return fmt.Errorf("insert photos: %w", err)
		}
		var events []event.Event
		for _, p := range photos {
			if p.Attempt == 1 {
				events = append(events, requested(p))
			}
		}
		if job.Status != database.JobOngoing {
			// Every store was unknown: the job is final already, and the
			// recorder will never see it finish.
			if _, err := callback.EnqueueJob(tx, job.UUID); err != nil {
				return err
			}
		}
		return outbox.Add(tx, correlationID, events...)
	})
	if err != nil {
		return "", err
	}
	r.notify()
	return job.UUID, nil
}

// GetJob reads the job's counters (kept by the recorder), its failed groups
// and one page of per-photo results, in group order.
func (r *Repository) GetJob(ctx context.Context, id string, offset, limit int) (app.Job, error) {
	db := r.db.WithContext(ctx)
	var j database.Job
	err := db.Take(&j, "uuid = ?", id).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return app.Job{}, app.ErrNotFound
	}
	if err != nil {
		return app.Job{}, fmt.Errorf("read job: %w", err)
	}
	out := app.Job{JobSummary: jobSummary(j), FailedGroups: []app.FailedGroup{}, Results: []app.JobResult{}}
	var failed []database.JobGroup
	if err := db.Where("job_uuid = ? AND status = 'failed'", id).Order("group_key").Find(&failed).Error; err != nil {
		return app.Job{}, fmt.Errorf("read failed groups: %w", err)
	}
	for _, g := range failed {
		out.FailedGroups = append(out.FailedGroups, app.FailedGroup{Key: g.GroupKey, Error: deref(g.Error), PhotoID: deref(g.FailedPhoto)})
	}
	if j.CallbackURL != nil {
		if out.Callback, err = loadCallback(db, database.CallbackKindJob, j.UUID, 1, j.Status != database.JobOngoing, *j.CallbackURL); err != nil {
			return app.Job{}, err
		}
	}
	var rows []struct {
		UUID, URL, Status, GroupKey string
		Width, Height               *int
		FailureCode, FailureMessage *string
		Thumb                       *string
	}
	if err := db.Raw(`SELECT p.uuid, p.url, p.status::text AS status, p.group_key, p.width, p.height,
			p.failure_code, p.failure_message,
			(SELECT t.url FROM photo_thumbnails t WHERE t.photo_uuid = p.uuid ORDER BY t.page, t.rendition LIMIT 1) AS thumb
		FROM photos p WHERE p.job_uuid = ? ORDER BY p.group_key, p.group_seq OFFSET ? LIMIT ?`, id, offset, limit).
		Scan(&rows).Error; err != nil {
		return app.Job{}, fmt.Errorf("read job results: %w", err)
	}
	for _, p := range rows {
		out.Results = append(out.Results, app.JobResult{
			PhotoID: p.UUID, Group: p.GroupKey, URL: p.URL, Status: p.Status,
			Width: deref(p.Width), Height: deref(p.Height), ThumbnailKey: deref(p.Thumb),
			FailureCode: deref(p.FailureCode), FailureMessage: deref(p.FailureMessage),
		})
	}
	return out, nil
}
