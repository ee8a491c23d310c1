package callback

import (
	"encoding/json"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"github.com/photopipe/photopipe/shared/database"
)

// EnqueuePhoto queues the callback of the photo's current attempt, within
// tx, if the photo has a callback URL and is final. It reports whether it
// wrote a row: a second call for the same attempt (a duplicate event)
// writes nothing, so a callback is never sent twice.
func EnqueuePhoto(tx *gorm.DB, photoID string) (bool, error) {
	var p database.Photo
	err := tx.Preload("Thumbnails", func(db *gorm.DB) *gorm.DB { return db.Order("rendition, page") }).
		Where("uuid = ? AND callback_url IS NOT NULL AND status IN ?", photoID,
			[]database.Status{database.StatusCompleted, database.StatusFailed}).
		Take(&p).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read photo for callback: %w", err)
	}
	body := Photo{
		Type: TypePhoto, ID: p.UUID, Status: string(p.Status), Attempt: p.StatusAttempt, URL: p.URL,
		FinishedAt: p.UpdatedAt.UTC(),
	}
	if p.CompletedAt != nil && p.Status == database.StatusCompleted {
		body.FinishedAt = p.CompletedAt.UTC()
	}
	if p.OriginalKey != nil {
		body.Original = &Original{
			Path: *p.OriginalKey, FileURL: fileURL(*p.OriginalKey), ContentType: deref(p.ContentType),
			Bytes: deref(p.Bytes), Width: deref(p.Width), Height: deref(p.Height), Pages: deref(p.Pages),
		}
	}
	if p.Status == database.StatusCompleted {
		body.Results = make([]Rendition, 0, len(p.Thumbnails))
		for _, t := range p.Thumbnails {
			body.Results = append(body.Results, Rendition{
				Rendition: t.Rendition, Page: t.Page, Path: t.URL, FileURL: fileURL(t.URL),
				Width: t.Width, Height: t.Height, Format: t.Format, Bytes: t.Bytes,
			})
		}
	} else {
		body.Errors = []Error{{
			Stage: deref(p.FailureStage), Code: deref(p.FailureCode), Message: deref(p.FailureMessage),
			Retryable: deref(p.FailureRetryable),
		}}
	}
	return insert(tx, database.CallbackKindPhoto, p.UUID, p.StatusAttempt, *p.CallbackURL, body)
}

// EnqueueJob queues the job's callback, within tx, if the job has a
// callback URL and is final (completed or failed). It reports whether it
// wrote a row; a job has at most one callback.
func EnqueueJob(tx *gorm.DB, jobID string) (bool, error) {
	var j database.Job
	err := tx.Where("uuid = ? AND callback_url IS NOT NULL AND status <> ?", jobID, database.JobOngoing).Take(&j).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read job for callback: %w", err)
	}
	var failed []database.JobGroup
	if err := tx.Where("job_uuid = ? AND status = ?", jobID, database.JobFailed).Order("group_key").Find(&failed).Error; err != nil {
		return false, fmt.Errorf("read failed groups for callback: %w", err)
	}
	finished := j.UpdatedAt
	if j.CompletedAt != nil {
		finished = *j.CompletedAt
	}
	body := Job{
		Type: TypeJob, ID: j.UUID, Kind: j.Kind, Status: string(j.Status), FinishedAt: finished.UTC(), Total: j.Total,
		Counts: map[string]int{"completed": j.Completed, "failed": j.Failed, "skipped": j.Skipped},
		Groups: map[string]int{"total": j.GroupsTotal, "failed": len(failed)},
		Errors: make([]GroupError, 0, len(failed)),
	}
	for _, g := range failed {
		body.Errors = append(body.Errors, GroupError{Group: g.GroupKey, Error: deref(g.Error), PhotoID: deref(g.FailedPhoto)})
	}
	return insert(tx, database.CallbackKindJob, j.UUID, 1, *j.CallbackURL, body)
}

func insert(tx *gorm.DB, kind, subject string, attempt int, url string, body any) (bool, error) {
	payload, err := json.Marshal(body)
	if err != nil {
		return false, fmt.Errorf("encode %s callback: %w", kind, err)
	}
	res := tx.Exec(`INSERT INTO callbacks (kind, subject_id, subject_attempt, url, payload)
		VALUES (?, ?, ?, ?, ?::jsonb) ON CONFLICT (kind, subject_id, subject_attempt) DO NOTHING`,
		kind, subject, attempt, url, string(payload))
	if res.Error != nil {
		return false, fmt.Errorf("queue %s callback: %w", kind, res.Error)
	}
	return res.RowsAffected > 0, nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
