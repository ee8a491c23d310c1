package app

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Photo and job statuses the read endpoints filter on.
var (
	photoStatuses = []string{"pending", "processing", "completed", "failed"}
	jobStatuses   = []string{"ongoing", "completed", "failed"}
)

// Counts is how many photos and jobs are in each status.
type Counts struct {
	Photos map[string]int
	Jobs   map[string]int
	// At is when the counts were read.
	At time.Time
}

// JobSummary is a job's counters without its results.
type JobSummary struct {
	ID           string
	Kind         string
	Status       string
	CreatedAt    time.Time
	CompletedAt  *time.Time
	Total        int
	Completed    int
	Failed       int
	Skipped      int
	GroupsTotal  int
	GroupsDone   int
	GroupsFailed int
}

// OverviewRepository reads what the dashboard shows. Every query is served
// by an index on (status, created_at), or reads the small jobs table.
type OverviewRepository interface {
	CountByStatus(ctx context.Context) (photos, jobs map[string]int, err error)
	RecentPhotos(ctx context.Context, statuses []string, before string, limit int) ([]Photo, error)
	RecentJobs(ctx context.Context, status string, before string, limit int) ([]JobSummary, error)
}

// Overview implements the read-only views of the dashboard and operators:
// counts per status, recent photos newest first, recent jobs.
type Overview struct {
	repo   OverviewRepository
	limits Limits
	ttl    time.Duration
	now    func() time.Time

	mu     sync.Mutex
	counts Counts
	keep   time.Duration // how long counts are kept: ttl, or longer when counting is slow
}

// NewOverview returns the read-only views. Counts are kept for ttl, so any
// number of dashboards polling costs one count per ttl; on a table so large
// that counting takes more than a tenth of ttl, they are kept ten times as
// long as counting took, so counting never keeps the database busy more
// than a tenth of the time.
func NewOverview(repo OverviewRepository, limits Limits, ttl time.Duration) *Overview {
	return &Overview{repo: repo, limits: limits, ttl: ttl, now: time.Now}
}

// Counts returns how many photos and jobs are in each status (every status
// is present, zero included), at most ttl old.
func (o *Overview) Counts(ctx context.Context) (Counts, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.counts.At.IsZero() && o.now().Sub(o.counts.At) < o.keep {
		return o.counts, nil
	}
	start := o.now()
	photos, jobs, err := o.repo.CountByStatus(ctx)
	if err != nil {
		return Counts{}, err
	}
	c := Counts{Photos: map[string]int{}, Jobs: map[string]int{}, At: o.now().UTC()}
	o.keep = max(o.ttl, 10*c.At.Sub(start))
	for _, s := range photoStatuses {
		c.Photos[s] = photos[s]
	}
	for _, s := range jobStatuses {
		c.Jobs[s] = jobs[s]
	}
	o.counts = c
	return c, nil
}

// Page asks for one page of a newest-first list: Before is the id of the
// last item of the previous page ("" for the first), Limit 0 is the
// default page size.
type Page struct {
	Before string
	Limit  int
}

// check normalises the cursor and limit.
func (o *Overview) check(p Page) (Page, error) {
	if p.Before != "" {
		u, err := uuid.Parse(p.Before)
		if err != nil {
			return p, invalid("invalid_cursor", "before: %q is not a UUID", p.Before)
		}
		p.Before = u.String()
	}
	switch {
	case p.Limit == 0:
		p.Limit = o.limits.PageSize
	case p.Limit < 0 || p.Limit > o.limits.MaxPageSize:
		return p, invalid("invalid_limit", "limit must be between 1 and %d", o.limits.MaxPageSize)
	}
	return p, nil
}

// RecentPhotos lists photos newest first, with their renditions; status
// "" means any. When the page is full, next is the cursor of the following
// page; otherwise "".
func (o *Overview) RecentPhotos(ctx context.Context, status string, page Page) (photos []Photo, next string, err error) {
	statuses := photoStatuses
	if status != "" {
		if !slices.Contains(photoStatuses, status) {
			return nil, "", invalid("invalid_status", "status must be one of %s", strings.Join(photoStatuses, ", "))
		}
		statuses = []string{status}
	}
	if page, err = o.check(page); err != nil {
		return nil, "", err
	}
	photos, err = o.repo.RecentPhotos(ctx, statuses, page.Before, page.Limit)
	if err != nil {
		return nil, "", err
	}
	if len(photos) == page.Limit {
		next = photos[len(photos)-1].UUID
	}
	return photos, next, nil
}

// RecentJobs lists jobs newest first; status "" means any.
func (o *Overview) RecentJobs(ctx context.Context, status string, page Page) (jobs []JobSummary, next string, err error) {
	if status != "" && !slices.Contains(jobStatuses, status) {
		return nil, "", invalid("invalid_status", "status must be one of %s", strings.Join(jobStatuses, ", "))
	}
	if page, err = o.check(page); err != nil {
		return nil, "", err
	}
	jobs, err = o.repo.RecentJobs(ctx, status, page.Before, page.Limit)
	if err != nil {
		return nil, "", err
	}
	if len(jobs) == page.Limit {
		next = jobs[len(jobs)-1].ID
	}
	return jobs, next, nil
}
