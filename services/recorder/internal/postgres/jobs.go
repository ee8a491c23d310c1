package postgres

import (
	"context"
	"fmt"

	"gorm.io/gorm"

	"github.com/photopipe/photopipe/shared/bus"
	"github.com/photopipe/photopipe/shared/database"
	"github.com/photopipe/photopipe/shared/event"
	"github.com/photopipe/photopipe/shared/outbox"
)

// jobPhoto is where a photo stands in its job, if it has one.
type jobPhoto struct {
	JobUUID  *string
	GroupKey *string
	GroupSeq *int
}

// advanceJob moves the photo's group and job on after the photo reached a
// final state (in the same transaction; jp is where the photo stands in
// its job, as the update that made it final returned it): a completed
// photo requests the next photo of its group, a failed one fails the group
// and skips its remaining photos; the job finishes when its last group
// does. It returns the job's id when this photo finished the job, ""
// otherwise, and whether it wrote an outbox event.
//
// Only the group's current photo moves it: the group is still ongoing and
// has finished exactly the photos before this one. A job's photo that ends
// another attempt (processed again once its job had finished: the
// ingest-api refuses the photos of running jobs) leaves the job as it is.
func advanceJob(ctx context.Context, tx *gorm.DB, photoID string, jp jobPhoto, failed bool, reason string) (string, bool, error) {
	if jp.JobUUID == nil || jp.GroupKey == nil || jp.GroupSeq == nil {
		return "", false, nil
	}
	job, key, seq := *jp.JobUUID, *jp.GroupKey, *jp.GroupSeq
	var current int
	res := database.Scan(tx.Raw(`SELECT 1 FROM job_groups WHERE job_uuid = ? AND group_key = ? AND status = ? AND done = ? FOR UPDATE`,
		job, key, database.JobOngoing, seq), &current)
	if res.Error != nil {
		return "", false, fmt.Errorf("lock group: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return "", false, nil // not the group's current photo
	}
	finishedGroup, failedGroup, requested := false, false, false
	if failed {
		res := tx.Exec(`UPDATE photos
			SET status = 'failed', failure_stage = 'job', failure_code = ?, updated_at = now(),
			    failure_message = ?, failure_retryable = false
			WHERE job_uuid = ? AND group_key = ? AND group_seq > ? AND status = 'pending'`,
			database.SkippedCode, fmt.Sprintf("not processed: photo %s of group %q failed first (%s)", photoID, key, reason),
			job, key, seq)
		if res.Error != nil {
			return "", false, fmt.Errorf("skip rest of group: %w", res.Error)
		}
		skipped := int(res.RowsAffected)
		if err := tx.Exec(`UPDATE job_groups SET status = 'failed', done = done + 1 + ?, error = ?, failed_photo = ?
			WHERE job_uuid = ? AND group_key = ?`, skipped, reason, photoID, job, key).Error; err != nil {
			return "", false, fmt.Errorf("fail group: %w", err)
		}
		if err := tx.Exec(`UPDATE jobs SET failed = failed + 1, skipped = skipped + ? WHERE uuid = ?`, skipped, job).Error; err != nil {
			return "", false, fmt.Errorf("count failure: %w", err)
		}
		finishedGroup, failedGroup = true, true
	} else {
		var g database.JobGroup
		if err := database.Scan(tx.Raw(`UPDATE job_groups SET done = done + 1 WHERE job_uuid = ? AND group_key = ?
			RETURNING job_uuid, group_key, total, done`, job, key), &g).Error; err != nil {
			return "", false, fmt.Errorf("count group progress: %w", err)
		}
		if err := tx.Exec(`UPDATE jobs SET completed = completed + 1 WHERE uuid = ?`, job).Error; err != nil {
			return "", false, fmt.Errorf("count completion: %w", err)
		}
		if g.Done < g.Total {
			ok, err := requestNext(ctx, tx, job, key, seq)
			if err != nil {
				return "", false, err
			}
			requested = ok
		} else {
			finishedGroup = true
			if err := tx.Exec(`UPDATE job_groups SET status = 'completed' WHERE job_uuid = ? AND group_key = ?`, job, key).Error; err != nil {
				return "", false, fmt.Errorf("complete group: %w", err)
			}
		}
	}
	if !finishedGroup {
		return "", requested, nil
	}
	failedInc := 0
	if failedGroup {
		failedInc = 1
	}
	var st struct{ Status string }
	if err := database.Scan(tx.Raw(`UPDATE jobs SET groups_finished = groups_finished + 1, groups_failed = groups_failed + ?,
		    status = CASE WHEN groups_finished + 1 < groups_total THEN 'ongoing'::job_status
		                  WHEN groups_failed + ? > 0 THEN 'failed'::job_status ELSE 'completed'::job_status END,
		    completed_at = CASE WHEN groups_finished + 1 >= groups_total THEN now() END,
		    updated_at = now()
		WHERE uuid = ? RETURNING status::text AS status`, failedInc, failedInc, job), &st).Error; err != nil {
		return "", false, fmt.Errorf("finish group: %w", err)
	}
	if st.Status == string(database.JobOngoing) {
		return "", requested, nil
	}
	return job, requested, nil
}

// requestNext starts the next photo of the group (processing from now on),
// with its PhotoRequested written to the outbox in the same transaction, and reports whether it
// did (a duplicate completion finds it requested already).
func requestNext(ctx context.Context, tx *gorm.DB, job, key string, seq int) (bool, error) {
	var next database.Photo
	res := database.Scan(tx.Raw(`UPDATE photos SET attempt = attempt + 1, status = 'processing', status_attempt = attempt + 1, updated_at = now()
		WHERE job_uuid = ? AND group_key = ? AND group_seq = ? AND status = 'pending' AND attempt = 0
		RETURNING *`, job, key, seq+1), &next)
	if res.Error != nil {
		return false, fmt.Errorf("request next photo of group: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return false, nil // already requested (a duplicate completion)
	}
	e := &event.PhotoRequested{
		Header: event.NewHeader(next.UUID, next.Attempt), URL: next.URL, Filename: next.Filename,
		Renditions: next.Renditions,
	}
	if next.OriginalKey != nil && next.URL == "" {
		e.OriginalKey = *next.OriginalKey
	}
	if err := outbox.Add(tx, bus.CorrelationID(ctx), e); err != nil {
		return false, err
	}
	return true, nil
}
