package postgres

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/photopipe/photopipe/services/ingest-api/internal/app"
	"github.com/photopipe/photopipe/shared/database"
)

// batchFixture is a repository on its own database with n pending photos.
type batchFixture struct {
	db     *gorm.DB
	r      *Repository
	photos []database.Photo
	held   int // batches that had run or were running when the held one started
}

func newBatchFixture(t *testing.T, n int) *batchFixture {
	t.Helper()
	db := mustOpenDB(t, 8)
	f := &batchFixture{db: db, r: New(db, func() {})}
	for range n {
		p := database.Photo{URL: "http://example.test/a.jpg", Status: database.StatusPending, Renditions: []string{"thumb"}}
		require.NoError(t, db.Create(&p).Error)
		f.photos = append(f.photos, p)
	}
	return f
}

// holdFirstBatch starts a RequestProcessing of photo 0 whose statement
// waits on a row lock until release is called, so that the calls made
// meanwhile queue up behind it; it returns release and the call's result.
func (f *batchFixture) holdFirstBatch(t *testing.T) (release func(), first <-chan []app.ProcessResult) {
	t.Helper()
	tx := f.db.Begin()
	require.NoError(t, tx.Error)
	require.NoError(t, tx.Exec("SELECT 1 FROM photos WHERE uuid = ? FOR UPDATE", f.photos[0].UUID).Error)
	f.held = f.runs()
	out := make(chan []app.ProcessResult, 1)
	go func() {
		res, err := f.r.RequestProcessing(context.Background(), []string{f.photos[0].UUID}, app.ProcessOptions{}, "corr-first")
		if err != nil {
			t.Errorf("first call: %v", err)
		}
		out <- res
	}()
	f.waitBusy(t, 0)
	return func() { require.NoError(t, tx.Rollback().Error) }, out
}

// waitBusy waits until the held batch runs and n calls wait behind it.
// (Batches run before holdFirstBatch do not count: with them, the held
// call could still be on its way to the queue, and a call made next could
// lead in its place.)
func (f *batchFixture) waitBusy(t *testing.T, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		return f.r.batches.Batches() > f.held && f.r.batches.Waiting() == n
	}, 10*time.Second, time.Millisecond)
}

func (f *batchFixture) runs() int { return f.r.batches.Batches() }

// TestRequestsWaitingShareOneBatch: the 40 requests that arrive while a
// batch runs are decided and written together, in one more batch, each
// with its own renditions and correlation id, each photo queued once.
func TestRequestsWaitingShareOneBatch(t *testing.T) {
	f := newBatchFixture(t, 41)
	release, first := f.holdFirstBatch(t)

	var wg sync.WaitGroup
	results := make([][]app.ProcessResult, 41)
	for i := 1; i <= 40; i++ {
		opts := app.ProcessOptions{}
		if i%2 == 0 {
			opts.Renditions = []string{"small"}
		}
		wg.Go(func() {
			res, err := f.r.RequestProcessing(context.Background(), []string{f.photos[i].UUID}, opts, "corr-"+f.photos[i].UUID)
			assert.NoError(t, err)
			results[i] = res
		})
	}
	f.waitBusy(t, 40)
	release()
	wg.Wait()
	require.Equal(t, []app.ProcessResult{{UUID: f.photos[0].UUID, Outcome: app.OutcomeQueued, Attempt: 1}}, <-first)
	require.Equal(t, 2, f.runs(), "the 40 waiting requests went in one batch")

	var rows []database.OutboxMessage
	require.NoError(t, f.db.Order("id").Find(&rows).Error)
	require.Len(t, rows, 41)
	corr := map[string]string{}
	for _, row := range rows {
		corr[row.MessageID] = row.Metadata[middleware.CorrelationIDMetadataKey]
	}
	for i := 1; i <= 40; i++ {
		p := f.photos[i]
		require.Equal(t, []app.ProcessResult{{UUID: p.UUID, Outcome: app.OutcomeQueued, Attempt: 1}}, results[i])
		var got database.Photo
		require.NoError(t, f.db.Take(&got, "uuid = ?", p.UUID).Error)
		require.Equal(t, 1, got.Attempt)
		require.Equal(t, database.StatusProcessing, got.Status, "photo %d", i)
		require.Equal(t, 1, got.StatusAttempt, "photo %d", i)
		want := []string{"thumb"}
		if i%2 == 0 {
			want = []string{"small"}
		}
		require.Equal(t, want, got.Renditions, "photo %d", i)
	}
	seen := map[string]int{}
	for _, c := range corr {
		seen[c]++
	}
	for i := 1; i <= 40; i++ {
		require.Equal(t, 1, seen["corr-"+f.photos[i].UUID], "one event with request %d's correlation id", i)
	}
}

// TestRequestsForOnePhotoAreNotBatchedTogether: requests naming a photo
// that an earlier waiting request names go in later batches, in order, so
// the first queues it and the later ones see it processing.
func TestRequestsForOnePhotoAreNotBatchedTogether(t *testing.T) {
	f := newBatchFixture(t, 3)
	release, first := f.holdFirstBatch(t)
	b, c := f.photos[1].UUID, f.photos[2].UUID

	results := make([]chan []app.ProcessResult, 3)
	for i, ids := range [][]string{{b}, {b}, {c, b}} {
		results[i] = make(chan []app.ProcessResult, 1)
		go func() {
			res, err := f.r.RequestProcessing(context.Background(), ids, app.ProcessOptions{}, "corr")
			assert.NoError(t, err)
			results[i] <- res
		}()
		f.waitBusy(t, i+1) // in this order
	}
	release()
	<-first
	require.Equal(t, []app.ProcessResult{{UUID: b, Outcome: app.OutcomeQueued, Attempt: 1}}, <-results[0])
	require.Equal(t, []app.ProcessResult{{UUID: b, Outcome: app.OutcomeAlreadyProcessing, Attempt: 1}}, <-results[1])
	require.Equal(t, []app.ProcessResult{
		{UUID: c, Outcome: app.OutcomeQueued, Attempt: 1},
		{UUID: b, Outcome: app.OutcomeAlreadyProcessing, Attempt: 1},
	}, <-results[2])
	require.Equal(t, 4, f.runs(), "the first, then one batch per request naming b")
	var n int64
	require.NoError(t, f.db.Model(&database.OutboxMessage{}).Count(&n).Error)
	require.EqualValues(t, 3, n, "one event per photo")
}

// TestBatchErrorAnswersOnlyItsRequest: when the database fails a batch's
// statement, each request of the batch runs again alone, so only the
// request that caused the failure gets the error, and the queue goes on.
// (The failure here is an id Postgres refuses, which the service's checks
// never let through: it stands for any error of one request's photos.)
func TestBatchErrorAnswersOnlyItsRequest(t *testing.T) {
	f := newBatchFixture(t, 3)
	release, first := f.holdFirstBatch(t)
	type answer struct {
		res []app.ProcessResult
		err error
	}
	answers := make([]chan answer, 2)
	for i, id := range []string{f.photos[1].UUID, "not-a-uuid"} {
		answers[i] = make(chan answer, 1)
		go func() {
			res, err := f.r.RequestProcessing(context.Background(), []string{id}, app.ProcessOptions{}, "corr")
			answers[i] <- answer{res, err}
		}()
		f.waitBusy(t, i+1)
	}
	release()
	<-first
	a := <-answers[0]
	require.NoError(t, a.err)
	require.Equal(t, []app.ProcessResult{{UUID: f.photos[1].UUID, Outcome: app.OutcomeQueued, Attempt: 1}}, a.res)
	b := <-answers[1]
	require.ErrorContains(t, b.err, "request processing")
	require.Nil(t, b.res)
	require.Equal(t, 2, f.runs(), "the two requests went in one batch")

	res, err := f.r.RequestProcessing(context.Background(), []string{f.photos[2].UUID}, app.ProcessOptions{}, "corr")
	require.NoError(t, err)
	require.Equal(t, []app.ProcessResult{{UUID: f.photos[2].UUID, Outcome: app.OutcomeQueued, Attempt: 1}}, res)
	require.Equal(t, 3, f.runs())
}

// TestBatchErrorAnswersOnlyUndecidedRequests: when the statement that
// queues a batch's photos fails on one photo, the request naming it gets
// the error, and a request of the same batch that needed no write keeps
// its answer.
func TestBatchErrorAnswersOnlyUndecidedRequests(t *testing.T) {
	f := newBatchFixture(t, 3)
	queuedBefore, failing := f.photos[1].UUID, f.photos[2].UUID
	res, err := f.r.RequestProcessing(context.Background(), []string{queuedBefore}, app.ProcessOptions{}, "corr")
	require.NoError(t, err)
	require.Equal(t, app.OutcomeQueued, res[0].Outcome)
	// Updates of one photo fail, as a database error would.
	require.NoError(t, f.db.Exec(`CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'refused'; END $$`).Error)
	require.NoError(t, f.db.Exec(`CREATE TRIGGER refuse BEFORE UPDATE ON photos FOR EACH ROW
		WHEN (OLD.uuid = '`+failing+`') EXECUTE FUNCTION refuse()`).Error)

	release, first := f.holdFirstBatch(t)
	type answer struct {
		res []app.ProcessResult
		err error
	}
	answers := make([]chan answer, 2)
	for i, id := range []string{queuedBefore, failing} {
		answers[i] = make(chan answer, 1)
		go func() {
			res, err := f.r.RequestProcessing(context.Background(), []string{id}, app.ProcessOptions{}, "corr")
			answers[i] <- answer{res, err}
		}()
		f.waitBusy(t, i+1)
	}
	release()
	<-first
	a := <-answers[0]
	require.NoError(t, a.err)
	require.Equal(t, []app.ProcessResult{{UUID: queuedBefore, Outcome: app.OutcomeAlreadyProcessing, Attempt: 1}}, a.res)
	b := <-answers[1]
	require.ErrorContains(t, b.err, "refused")
	require.Nil(t, b.res)
	require.Equal(t, 2+1, f.runs(), "the two requests went in one batch")
}
