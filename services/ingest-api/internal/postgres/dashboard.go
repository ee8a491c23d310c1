package postgres

import (
	"context"
	"fmt"
	"strings"

	"gorm.io/gorm"

	"github.com/photopipe/photopipe/services/ingest-api/internal/app"
	"github.com/photopipe/photopipe/shared/database"
)

var _ app.OverviewRepository = (*Repository)(nil)

// CountByStatus counts photos and jobs per status. Photos are counted from
// the (status, created_at) index; the caller keeps the result for a while.
func (r *Repository) CountByStatus(ctx context.Context) (photos, jobs map[string]int, err error) {
	db := r.db.WithContext(ctx)
	var rows []struct {
		Status string
		N      int
	}
	if err := database.Scan(db.Raw(`SELECT status::text AS status, count(*) AS n FROM photos GROUP BY status`), &rows).Error; err != nil {
		return nil, nil, fmt.Errorf("count photos: %w", err)
	}
	photos = make(map[string]int, len(rows))
	for _, x := range rows {
		photos[x.Status] = x.N
	}
	rows = nil
	if err := database.Scan(db.Raw(`SELECT status::text AS status, count(*) AS n FROM jobs GROUP BY status`), &rows).Error; err != nil {
		return nil, nil, fmt.Errorf("count jobs: %w", err)
	}
	jobs = make(map[string]int, len(rows))
	for _, x := range rows {
		jobs[x.Status] = x.N
	}
	return photos, jobs, nil
}

// RecentPhotos returns the newest photos in any of statuses, before the
// cursor photo, with their renditions. Each status is read newest first
// from the (status, created_at) index and the lists are merged, so the
// query never sorts the table, whatever the filter.
func (r *Repository) RecentPhotos(ctx context.Context, statuses []string, before string, limit int) ([]app.Photo, error) {
	db := r.db.WithContext(ctx)
	parts := make([]string, 0, len(statuses))
	var args []any
	for _, s := range statuses {
		q := `(SELECT uuid, created_at FROM photos WHERE status = ?`
		args = append(args, s)
		if before != "" {
			q += ` AND (created_at, uuid) < (SELECT created_at, uuid FROM photos WHERE uuid = ?)`
			args = append(args, before)
		}
		parts = append(parts, q+` ORDER BY created_at DESC, uuid DESC LIMIT ?)`)
		args = append(args, limit)
	}
	var ids []string
	err := database.Scan(db.Raw(`SELECT uuid FROM (`+strings.Join(parts, " UNION ALL ")+`) AS recent ORDER BY created_at DESC, uuid DESC LIMIT ?`,
		append(args, limit)...), &ids).Error
	if err != nil {
		return nil, fmt.Errorf("list recent photos: %w", err)
	}
	if len(ids) == 0 {
		return []app.Photo{}, nil
	}
	var rows []database.Photo
	err = db.Preload("Thumbnails", func(db *gorm.DB) *gorm.DB { return db.Order("rendition, page") }).
		Where("uuid IN ?", ids).Order("created_at DESC, uuid DESC").Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("read recent photos: %w", err)
	}
	out := make([]app.Photo, len(rows))
	for i, p := range rows {
		out[i] = toApp(p)
	}
	return out, nil
}

// RecentJobs returns the newest jobs (in status, when not ""), before the
// cursor job, from the (status, created_at) and created_at indexes
// (migration 00005).
func (r *Repository) RecentJobs(ctx context.Context, status string, before string, limit int) ([]app.JobSummary, error) {
	q := r.db.WithContext(ctx).Model(&database.Job{})
	if status != "" {
		q = q.Where("status = ?", status)
	}
	if before != "" {
		q = q.Where("(created_at, uuid) < (SELECT created_at, uuid FROM jobs WHERE uuid = ?)", before)
	}
	var rows []database.Job
	if err := q.Order("created_at DESC, uuid DESC").Limit(limit).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	out := make([]app.JobSummary, len(rows))
	for i, j := range rows {
		out[i] = jobSummary(j)
	}
	return out, nil
}

func jobSummary(j database.Job) app.JobSummary {
	return app.JobSummary{
		ID: j.UUID, Kind: j.Kind, Status: string(j.Status), CreatedAt: j.CreatedAt, CompletedAt: j.CompletedAt,
		Total: j.Total, Completed: j.Completed, Failed: j.Failed, Skipped: j.Skipped,
		GroupsTotal: j.GroupsTotal, GroupsDone: j.GroupsFinished, GroupsFailed: j.GroupsFailed,
	}
}
