package app

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeOverviewRepo records calls and answers with fixed data.
type fakeOverviewRepo struct {
	delay    func() // called while counting
	counts   int
	err      error
	statuses []string
	before   string
	limit    int
	photos   []Photo
}

func (f *fakeOverviewRepo) CountByStatus(context.Context) (map[string]int, map[string]int, error) {
	f.counts++
	if f.delay != nil {
		f.delay()
	}
	return map[string]int{"completed": 3, "weird": 1}, map[string]int{"ongoing": 2}, f.err
}

func (f *fakeOverviewRepo) RecentPhotos(_ context.Context, statuses []string, before string, limit int) ([]Photo, error) {
	f.statuses, f.before, f.limit = statuses, before, limit
	return f.photos, f.err
}

func (f *fakeOverviewRepo) RecentJobs(_ context.Context, status string, before string, limit int) ([]JobSummary, error) {
	f.statuses, f.before, f.limit = []string{status}, before, limit
	return nil, f.err
}

var testLimits = Limits{PageSize: 2, MaxPageSize: 10}

func TestOverviewCountsAreCached(t *testing.T) {
	t.Parallel()
	repo := &fakeOverviewRepo{}
	o := NewOverview(repo, testLimits, time.Second)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	o.now = func() time.Time { return now }

	c, err := o.Counts(t.Context())
	require.NoError(t, err)
	require.Equal(t, map[string]int{"pending": 0, "processing": 0, "completed": 3, "failed": 0}, c.Photos)
	require.Equal(t, map[string]int{"ongoing": 2, "completed": 0, "failed": 0}, c.Jobs)
	_, err = o.Counts(t.Context())
	require.NoError(t, err)
	require.Equal(t, 1, repo.counts, "read again within the ttl")
	now = now.Add(time.Second)
	_, err = o.Counts(t.Context())
	require.NoError(t, err)
	require.Equal(t, 2, repo.counts, "read again after the ttl")

	// A slow count (0.5 s) is kept ten times as long.
	repo.delay = func() { now = now.Add(500 * time.Millisecond) }
	now = now.Add(time.Second)
	_, err = o.Counts(t.Context())
	require.NoError(t, err)
	require.Equal(t, 3, repo.counts)
	repo.delay = nil
	now = now.Add(4 * time.Second)
	_, err = o.Counts(t.Context())
	require.NoError(t, err)
	require.Equal(t, 3, repo.counts, "kept for 5 s")
	now = now.Add(time.Second)
	_, err = o.Counts(t.Context())
	require.NoError(t, err)
	require.Equal(t, 4, repo.counts)

	repo.err = errors.New("db down")
	now = now.Add(time.Second)
	_, err = o.Counts(t.Context())
	require.ErrorIs(t, err, repo.err)
}

func TestOverviewRecentPhotos(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, status string
		page         Page
		wantStatuses []string
		wantLimit    int
		wantBefore   string
		wantCode     string
	}{
		{name: "any status, default page", wantStatuses: photoStatuses, wantLimit: 2},
		{name: "one status", status: "failed", page: Page{Limit: 10}, wantStatuses: []string{"failed"}, wantLimit: 10},
		{name: "cursor normalised", page: Page{Before: "0B4C7A52-6D0E-4A8E-9A43-2F3D2F1C9B11"}, wantStatuses: photoStatuses,
			wantLimit: 2, wantBefore: "0b4c7a52-6d0e-4a8e-9a43-2f3d2f1c9b11"},
		{name: "unknown status", status: "done", wantCode: "invalid_status"},
		{name: "limit too large", page: Page{Limit: 11}, wantCode: "invalid_limit"},
		{name: "negative limit", page: Page{Limit: -1}, wantCode: "invalid_limit"},
		{name: "bad cursor", page: Page{Before: "x"}, wantCode: "invalid_cursor"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			repo := &fakeOverviewRepo{photos: []Photo{{UUID: "a"}, {UUID: "b"}}}
			_, next, err := NewOverview(repo, testLimits, time.Second).RecentPhotos(t.Context(), tc.status, tc.page)
			if tc.wantCode != "" {
				var inv *InvalidError
				require.ErrorAs(t, err, &inv)
				require.Equal(t, tc.wantCode, inv.Code)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.wantStatuses, repo.statuses)
			require.Equal(t, tc.wantLimit, repo.limit)
			require.Equal(t, tc.wantBefore, repo.before)
			if tc.wantLimit == 2 {
				require.Equal(t, "b", next, "a full page has a next cursor")
			} else {
				require.Empty(t, next)
			}
		})
	}
}

func TestOverviewRecentJobs(t *testing.T) {
	t.Parallel()
	repo := &fakeOverviewRepo{}
	o := NewOverview(repo, testLimits, time.Second)
	_, _, err := o.RecentJobs(t.Context(), "ongoing", Page{Limit: 5})
	require.NoError(t, err)
	require.Equal(t, []string{"ongoing"}, repo.statuses)
	require.Equal(t, 5, repo.limit)
	var inv *InvalidError
	_, _, err = o.RecentJobs(t.Context(), "pending", Page{})
	require.ErrorAs(t, err, &inv)
	require.Equal(t, "invalid_status", inv.Code)
}
