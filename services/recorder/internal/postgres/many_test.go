package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/photopipe/photopipe/shared/database"
	"github.com/photopipe/photopipe/shared/event"
)

// fixture is one photo in each state the recorder distinguishes, in a
// fresh job of its own where it needs one.
type fixture struct {
	ids  []string // in the order of the states below
	job  string
	next string // the photo after the job photo in its group
}

func ptr[T any](v T) *T { return &v }

func newFixture(t *testing.T, db *gorm.DB) fixture {
	t.Helper()
	var f fixture
	job := database.Job{Kind: "native", Total: 2, GroupsTotal: 1, Status: database.JobOngoing, CallbackURL: ptr("https://hooks.example.test/job")}
	require.NoError(t, db.Create(&job).Error)
	f.job = job.UUID
	require.NoError(t, db.Create(&database.JobGroup{JobUUID: job.UUID, GroupKey: "S", Status: database.JobOngoing, Total: 2}).Error)
	mk := func(p database.Photo) string {
		p.URL, p.Renditions = "http://example.test/a.jpg", []string{"thumb"}
		require.NoError(t, db.Create(&p).Error)
		return p.UUID
	}
	f.ids = []string{
		mk(database.Photo{Status: database.StatusPending, Attempt: 1}),
		mk(database.Photo{Status: database.StatusProcessing, Attempt: 1, StatusAttempt: 1}),
		mk(database.Photo{Status: database.StatusCompleted, Attempt: 1, StatusAttempt: 1, OriginalKey: ptr("originals/x/old.jpg")}),
		mk(database.Photo{Status: database.StatusFailed, Attempt: 2, StatusAttempt: 1, FailureCode: ptr("decode_error"), FailureStage: ptr("resize")}),
		mk(database.Photo{Status: database.StatusProcessing, Attempt: 1, StatusAttempt: 1, DeadLetterService: ptr("downloader"), DeadLetterReason: ptr("r")}),
		mk(database.Photo{Status: database.StatusProcessing, Attempt: 1, StatusAttempt: 1, DeadLetterService: ptr("resizer"), DeadLetterReason: ptr("r")}),
		mk(database.Photo{Status: database.StatusProcessing, Attempt: 1, StatusAttempt: 1, JobUUID: &job.UUID, GroupKey: ptr("S"), GroupSeq: ptr(0)}),
		mk(database.Photo{Status: database.StatusProcessing, Attempt: 1, StatusAttempt: 1, CallbackURL: ptr("https://hooks.example.test/p")}),
		mk(database.Photo{Status: database.StatusProcessing, Attempt: 2, StatusAttempt: 2}),
	}
	// The last photo is at its second attempt, with attempt 1's rendition.
	require.NoError(t, db.Create(&database.Thumbnail{PhotoUUID: f.ids[len(f.ids)-1], Rendition: "thumb",
		Width: 320, Height: 160, URL: "thumbnails/x/earlier-thumb.jpg", Format: "jpeg", Bytes: 1}).Error)
	f.next = mk(database.Photo{Status: database.StatusPending, JobUUID: &job.UUID, GroupKey: ptr("S"), GroupSeq: ptr(1)})
	return f
}

// state is everything an event may change about the fixture, without
// the times.
func (f fixture) state(t *testing.T, db *gorm.DB) string {
	t.Helper()
	out := ""
	for _, id := range append(f.ids, f.next) {
		var p database.Photo
		require.NoError(t, db.Preload("Thumbnails").Take(&p, "uuid = ?", id).Error)
		var outbox, callbacks int64
		require.NoError(t, db.Raw("SELECT count(*) FROM outbox WHERE convert_from(payload, 'UTF8')::jsonb->>'photo_id' = ?", id).Scan(&outbox).Error)
		require.NoError(t, db.Table("callbacks").Where("subject_id = ?", id).Count(&callbacks).Error)
		thumbs := ""
		for _, th := range p.Thumbnails {
			thumbs += fmt.Sprintf("%s/%d %dx%d %s %s %d;", th.Rendition, th.Page, th.Width, th.Height, th.URL, th.Format, th.Bytes)
		}
		out += fmt.Sprintf("%s a=%d sa=%d %v %v %v %v %v %v %v %v %v %v %v %v %v completed=%v outbox=%d callbacks=%d [%s]\n",
			p.Status, p.Attempt, p.StatusAttempt, p.Filename, s(p.OriginalKey), s(p.ContentType), s(p.Bytes), s(p.Width), s(p.Height),
			s(p.Pages), s(p.FailureStage), s(p.FailureCode), s(p.FailureMessage), s(p.FailureRetryable), s(p.DeadLetterService),
			s(p.DeadLetterReason), p.CompletedAt != nil, outbox, callbacks, thumbs)
	}
	var j database.Job
	require.NoError(t, db.Take(&j, "uuid = ?", f.job).Error)
	var jobCallbacks int64
	require.NoError(t, db.Table("callbacks").Where("subject_id = ?", f.job).Count(&jobCallbacks).Error)
	out += fmt.Sprintf("job %s completed=%d failed=%d groups=%d/%d callbacks=%d\n",
		j.Status, j.Completed, j.Failed, j.GroupsFinished, j.GroupsTotal, jobCallbacks)
	for i, id := range append(f.ids, f.next) {
		out = strings.ReplaceAll(out, id, fmt.Sprintf("<photo %d>", i))
	}
	return out
}

func s[T any](p *T) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprint(*p)
}

// inOneBatch applies every call at once in one batch of r's (they wait
// behind a batch held open until all of them are queued) and returns
// what each reported.
func inOneBatch(t *testing.T, r *Repository, calls []func() (bool, error)) []bool {
	t.Helper()
	release := make(chan struct{})
	held := make(chan struct{})
	go func() {
		_, _ = r.batch.do(context.Background(), &op{photo: "", run: func(*gorm.DB) (final, error) {
			close(held)
			<-release
			return final{}, nil
		}})
	}()
	<-held
	applied := make([]bool, len(calls))
	var wg sync.WaitGroup
	for i, c := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := c()
			if err != nil {
				t.Error(err)
			}
			applied[i] = ok
		}()
	}
	require.Eventually(t, func() bool { return r.batch.q.Waiting() == len(calls) }, 10*time.Second, time.Millisecond)
	close(release)
	wg.Wait()
	require.Zero(t, r.batch.failed.Load(), "no batch fell back to one transaction per event")
	return applied
}

// TestManyEqualsOne: the statements that apply many events at once leave
// every photo, rendition, outbox event, callback and job counter as the
// events applied one by one would, and report the same photos as moved.
func TestManyEqualsOne(t *testing.T) {
	db := MustOpenDB(t)
	ctx := context.Background()
	one := New(db, func() {}, func() {}, WithBatch(1))
	many := New(db, func() {}, func() {}, WithBatch(64))
	type event_ = func(r *Repository, id, header string) (bool, error) // header: the id as the event spells it
	for _, tc := range []struct {
		name   string
		ev     event_
		second bool // of attempt 2
	}{
		{"ThumbnailCreated", func(r *Repository, id, header string) (bool, error) {
			return r.Complete(ctx, &event.ThumbnailCreated{Header: event.NewHeader(header, 1), Width: 1000, Height: 500, Pages: 1,
				OriginalKey: "originals/" + id + "/b.jpg", Filename: "b.jpg", Bytes: 0,
				Renditions: []event.Rendition{
					{Name: "thumb", Key: "thumbnails/" + id + "/thumb.jpg", Width: 320, Height: 160, Format: "jpeg", Bytes: 123},
					{Name: "small", Key: "thumbnails/" + id + "/small.jpg", Width: 128, Height: 64, Format: "jpeg", Bytes: 45},
				}})
		}, false},
		{"ThumbnailCreated of attempt 2", func(r *Repository, id, header string) (bool, error) {
			return r.Complete(ctx, &event.ThumbnailCreated{Header: event.NewHeader(header, 2), Width: 10, Height: 5, Pages: 1,
				Renditions: []event.Rendition{{Name: "square100", Key: "thumbnails/" + id + "/square100.jpg", Width: 100, Height: 100, Format: "jpeg", Bytes: 9}}})
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newFixture(t, db), newFixture(t, db)
			var wantApplied []bool
			for _, id := range a.ids {
				ok, err := tc.ev(one, id, id)
				require.NoError(t, err)
				wantApplied = append(wantApplied, ok)
			}
			var calls []func() (bool, error)
			for i, id := range b.ids {
				header := id
				if i%2 == 1 {
					header = strings.ToUpper(id) // another spelling of the same uuid
				}
				calls = append(calls, func() (bool, error) { return tc.ev(many, id, header) })
			}
			require.Equal(t, wantApplied, inOneBatch(t, many, calls))
			state := b.state(t, db)
			require.Equal(t, a.state(t, db), state)
			if tc.second {
				require.NotContains(t, state, "earlier-thumb", "a later attempt's renditions replace the earlier ones")
			} else {
				require.Contains(t, state, "earlier-thumb", "an event of an earlier attempt leaves them")
			}
		})
	}
}

// TestManyWithDuplicates: a photo's duplicate in the batch is applied
// after the first, so it changes nothing.
func TestManyWithDuplicates(t *testing.T) {
	db := MustOpenDB(t)
	ctx := context.Background()
	r := New(db, func() {}, func() {}, WithBatch(64))
	f := newFixture(t, db)
	id := f.ids[1]
	complete := func() (bool, error) {
		return r.Complete(ctx, &event.ThumbnailCreated{Header: event.NewHeader(id, 1), Width: 1000, Height: 500, Pages: 1,
			Renditions: []event.Rendition{{Name: "thumb", Key: "thumbnails/" + id + "/thumb.jpg", Width: 320, Height: 160, Format: "jpeg"}}})
	}
	other := func() (bool, error) {
		return r.Complete(ctx, &event.ThumbnailCreated{Header: event.NewHeader(f.ids[0], 1), Width: 1, Height: 1, Pages: 1})
	}
	applied := inOneBatch(t, r, []func() (bool, error){complete, complete, other, complete})
	n := 0
	for _, ok := range applied[:2] {
		if ok {
			n++
		}
	}
	if applied[3] {
		n++
	}
	require.Equal(t, 1, n, "one of the three copies moved the photo")
	require.True(t, applied[2])
	var p database.Photo
	require.NoError(t, db.Preload("Thumbnails").Take(&p, "uuid = ?", id).Error)
	require.Equal(t, database.StatusCompleted, p.Status)
	require.Len(t, p.Thumbnails, 1)
}

// TestManyRenditionsOfManyPages: a batch of completed documents with more
// renditions than one statement's parameters allow is applied as one
// batch, every rendition written.
func TestManyRenditionsOfManyPages(t *testing.T) {
	db := MustOpenDB(t)
	ctx := context.Background()
	r := New(db, func() {}, func() {}, WithBatch(64))
	var calls []func() (bool, error)
	var ids []string
	for range 13 { // 13 x 200 pages x 3 renditions x 10 parameters > 65,535
		p := database.Photo{Status: database.StatusProcessing, Attempt: 1, StatusAttempt: 1, URL: "http://example.test/a.pdf", Renditions: []string{"thumb"}}
		require.NoError(t, db.Create(&p).Error)
		ids = append(ids, p.UUID)
		var rs []event.Rendition
		for page := 1; page <= 200; page++ {
			for _, name := range []string{"thumb", "small", "preview"} {
				rs = append(rs, event.Rendition{Name: name, Page: page, Key: fmt.Sprintf("thumbnails/%s/%s-p%d.jpg", p.UUID, name, page),
					Width: 1, Height: 1, Format: "jpeg", Bytes: 1})
			}
		}
		e := &event.ThumbnailCreated{Header: event.NewHeader(p.UUID, 1), Width: 1, Height: 1, Pages: 200, Renditions: rs}
		calls = append(calls, func() (bool, error) { return r.Complete(ctx, e) })
	}
	for _, ok := range inOneBatch(t, r, calls) {
		require.True(t, ok)
	}
	var n int64
	require.NoError(t, db.Model(&database.Thumbnail{}).Where("photo_uuid IN ?", ids).Count(&n).Error)
	require.EqualValues(t, 13*200*3, n)
}

// TestManyReplicasFinishJobsWithoutDeadlock: two recorders complete, at
// once, photos of the same two jobs in opposite job order (by photo id);
// both batches lock the jobs in job order, so neither deadlocks (Postgres
// would abort one, and its events would go one by one).
func TestManyReplicasFinishJobsWithoutDeadlock(t *testing.T) {
	db := MustOpenDB(t)
	ctx := context.Background()
	r1 := New(db, func() {}, func() {}, WithBatch(64))
	r2 := New(db, func() {}, func() {}, WithBatch(64))
	for range 10 {
		var jobs [2]string
		for j := range jobs {
			job := database.Job{Kind: "native", Total: 2, GroupsTotal: 2, Status: database.JobOngoing}
			require.NoError(t, db.Create(&job).Error)
			jobs[j] = job.UUID
			for _, g := range []string{"g1", "g2"} {
				require.NoError(t, db.Create(&database.JobGroup{JobUUID: job.UUID, GroupKey: g, Status: database.JobOngoing, Total: 1}).Error)
			}
		}
		// By photo id: A of job 0, B of job 1, C of job 1, D of job 0;
		// recorder 1 gets A and C, recorder 2 B and D.
		var ids []string
		for range 4 {
			ids = append(ids, uuid.NewString())
		}
		slices.Sort(ids)
		for i, of := range []struct {
			job   int
			group string
		}{{0, "g1"}, {1, "g2"}, {1, "g1"}, {0, "g2"}} {
			p := database.Photo{UUID: ids[i], Status: database.StatusProcessing, Attempt: 1, StatusAttempt: 1, URL: "http://example.test/a.jpg",
				Renditions: []string{"thumb"}, JobUUID: &jobs[of.job], GroupKey: ptr(of.group), GroupSeq: ptr(0)}
			require.NoError(t, db.Create(&p).Error)
		}
		complete := func(r *Repository, id string) func() (bool, error) {
			return func() (bool, error) {
				return r.Complete(ctx, &event.ThumbnailCreated{Header: event.NewHeader(id, 1), Width: 1, Height: 1, Pages: 1})
			}
		}
		// Each recorder's two events wait behind a held batch; both are
		// let go at once.
		release := make(chan struct{})
		var wg sync.WaitGroup
		for _, r := range []*Repository{r1, r2} {
			held := make(chan struct{})
			wg.Go(func() {
				_, _ = r.batch.do(ctx, &op{run: func(*gorm.DB) (final, error) { close(held); <-release; return final{}, nil }})
			})
			<-held
		}
		for i, id := range ids {
			r := []*Repository{r1, r2}[i%2]
			wg.Go(func() {
				ok, err := complete(r, id)()
				assert.NoError(t, err)
				assert.True(t, ok)
			})
		}
		require.Eventually(t, func() bool { return r1.batch.q.Waiting() == 2 && r2.batch.q.Waiting() == 2 }, 10*time.Second, time.Millisecond)
		close(release)
		wg.Wait()
		require.Zero(t, r1.batch.failed.Load()+r2.batch.failed.Load(), "a batch failed (deadlock) and went one by one")
		for _, j := range jobs {
			var job database.Job
			require.NoError(t, db.Take(&job, "uuid = ?", j).Error)
			require.Equal(t, 2, job.Completed)
			require.Equal(t, database.JobCompleted, job.Status)
		}
	}
}
