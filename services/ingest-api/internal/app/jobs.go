package app

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/uuid"
)

// GroupInput is one group (a store) of a job: its photos in order.
type GroupInput struct {
	Key       string
	URLs      []string
	VisitTime string
}

// NewJob is a batch to register.
type NewJob struct {
	Kind        string // "native" or "retailpulse"
	Groups      []GroupInput
	Renditions  []string
	CallbackURL string
}

// FailedGroup is a group that stopped at its first failure.
type FailedGroup struct {
	Key     string
	Error   string
	PhotoID string
}

// JobResult is one photo of a job.
type JobResult struct {
	PhotoID        string
	Group          string
	URL            string
	Status         string
	Width          int
	Height         int
	ThumbnailKey   string
	FailureCode    string
	FailureMessage string
}

// Job is a batch job as the API shows it: its counters, failed groups,
// a page of results and its callback.
type Job struct {
	JobSummary
	FailedGroups []FailedGroup
	Results      []JobResult
	Callback     *Callback
}

// StoreMaster says which group keys (store ids) exist; nil accepts all.
type StoreMaster interface {
	Known(id string) bool
}

// JobRepository stores jobs, their groups and photos, with the first
// PhotoRequested of every group, in one transaction.
type JobRepository interface {
	CreateJob(ctx context.Context, job NewJob, unknownGroups map[string]bool, correlationID string) (string, error)
	GetJob(ctx context.Context, id string, offset, limit int) (Job, error)
}

// ErrStoreNotFound is the error of a group whose store is not in the store master.
const ErrStoreNotFound = "store not found"

// Jobs implements the batch use cases.
type Jobs struct {
	repo      JobRepository
	stores    StoreMaster
	photos    *Service
	maxPhotos int
}

// NewJobs returns the job use cases; stores may be nil (no validation).
func NewJobs(repo JobRepository, stores StoreMaster, photos *Service, maxPhotosPerJob int) *Jobs {
	return &Jobs{repo: repo, stores: stores, photos: photos, maxPhotos: maxPhotosPerJob}
}

// Submit validates and registers a job and starts every group.
func (j *Jobs) Submit(ctx context.Context, job NewJob, correlationID string) (string, error) {
	if len(job.Groups) == 0 {
		return "", invalid("empty_job", "a job needs at least one group of photos")
	}
	total := 0
	seen := map[string]bool{}
	for i, g := range job.Groups {
		if strings.TrimSpace(g.Key) == "" {
			return "", invalid("invalid_group", "groups[%d]: the group key (store_id) is missing", i)
		}
		if len(g.URLs) == 0 {
			return "", invalid("invalid_group", "groups[%d] (%s): no image URLs", i, g.Key)
		}
		for k, u := range g.URLs {
			if err := j.photos.checkURL(u); err != nil {
				return "", invalid("invalid_url", "groups[%d] (%s) urls[%d]: %v", i, g.Key, k, err)
			}
		}
		if seen[g.Key] {
			return "", invalid("invalid_group", "groups[%d]: group %q appears twice", i, g.Key)
		}
		seen[g.Key] = true
		total += len(g.URLs)
	}
	if total > j.maxPhotos {
		return "", invalid("too_many_photos", "%d photos in one job; the limit is %d", total, j.maxPhotos)
	}
	names, err := j.photos.presets.Check(job.Renditions)
	if err != nil {
		return "", invalid("unknown_rendition", "%v", err)
	}
	job.Renditions = names
	if err := j.photos.checkCallbackURL(job.CallbackURL); err != nil {
		return "", err
	}
	unknown := map[string]bool{}
	if j.stores != nil {
		for _, g := range job.Groups {
			if !j.stores.Known(g.Key) {
				unknown[g.Key] = true
			}
		}
	}
	return j.repo.CreateJob(ctx, job, unknown, correlationID)
}

// Get returns a job with a page of its per-photo results.
func (j *Jobs) Get(ctx context.Context, id string, offset, limit int) (Job, error) {
	u, err := uuid.Parse(id)
	if err != nil {
		return Job{}, invalid("invalid_job_id", "%q is not a job id", id)
	}
	if offset < 0 || limit < 0 || limit > j.photos.limits.MaxPageSize {
		return Job{}, invalid("invalid_page", "offset must be >= 0 and limit between 1 and %d (none or 0: %d)",
			j.photos.limits.MaxPageSize, j.photos.limits.PageSize)
	}
	if limit == 0 {
		limit = j.photos.limits.PageSize
	}
	job, err := j.repo.GetJob(ctx, u.String(), offset, limit)
	if err != nil {
		return Job{}, fmt.Errorf("job %s: %w", id, err)
	}
	return job, nil
}
