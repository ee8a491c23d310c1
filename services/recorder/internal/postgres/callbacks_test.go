package postgres_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/photopipe/photopipe/services/recorder/internal/app"
	"github.com/photopipe/photopipe/services/recorder/internal/postgres"
	"github.com/photopipe/photopipe/services/recorder/internal/webhook"
	"github.com/photopipe/photopipe/shared/callback"
	"github.com/photopipe/photopipe/shared/database"
	"github.com/photopipe/photopipe/shared/event"
)

const testSecret = "test-callback-secret"

func callbacksOf(t *testing.T, db *gorm.DB, subject string) []database.Callback {
	t.Helper()
	var rows []database.Callback
	require.NoError(t, db.Where("subject_id = ?", subject).Order("subject_attempt").Find(&rows).Error)
	return rows
}

func attemptsOf(t *testing.T, db *gorm.DB, id string) []database.CallbackAttempt {
	t.Helper()
	var rows []database.CallbackAttempt
	require.NoError(t, db.Where("callback_id = ?", id).Order("attempt").Find(&rows).Error)
	return rows
}

func photoWithCallback(t *testing.T, db *gorm.DB, url string) string {
	t.Helper()
	p := database.Photo{URL: "http://example.test/a.jpg", Status: database.StatusProcessing, Attempt: 1, StatusAttempt: 1,
		Renditions: []string{"thumb"}, CallbackURL: &url}
	require.NoError(t, db.Create(&p).Error)
	return p.UUID
}

// TestCallbackQueuedWithTheFinalState: the recorder queues one callback
// per finished attempt, in the transaction that finishes it, whatever the
// duplicates and late events.
func TestCallbackQueuedWithTheFinalState(t *testing.T) {
	db := postgres.MustOpenDB(t)
	woken := 0
	repo := postgres.New(db, func() {}, func() { woken++ })
	ctx := context.Background()

	id := photoWithCallback(t, db, "https://hooks.example.test/done")
	require.Empty(t, callbacksOf(t, db, id), "nothing before the final state")
	for range 2 {
		_, err := repo.Complete(ctx, created(id, 1, 320, 160))
		require.NoError(t, err)
	}
	_, err := repo.Fail(ctx, failed(id, 1, "decode_error")) // late: the attempt already completed
	require.NoError(t, err)
	rows := callbacksOf(t, db, id)
	require.Len(t, rows, 1, "one callback per attempt, duplicates and late events send nothing")
	require.Equal(t, 1, woken)
	cb := rows[0]
	require.Equal(t, database.CallbackKindPhoto, cb.Kind)
	require.Equal(t, database.CallbackPending, cb.Status)
	require.Equal(t, "https://hooks.example.test/done", cb.URL)
	var body callback.Photo
	require.NoError(t, json.Unmarshal(cb.Payload, &body))
	require.Equal(t, "photo", body.Type)
	require.Equal(t, id, body.ID)
	require.Equal(t, "completed", body.Status)
	require.Equal(t, 1, body.Attempt)
	require.Len(t, body.Results, 1)
	require.Equal(t, "thumbnails/"+id+"/thumb.jpg", body.Results[0].Path)
	require.Equal(t, 320, body.Results[0].Width)
	require.Empty(t, body.Errors)

	// A new attempt (reprocessing) that fails reports again, with the error.
	require.NoError(t, db.Exec("UPDATE photos SET attempt = 2 WHERE uuid = ?", id).Error)
	_, err = repo.Fail(ctx, failed(id, 2, "decode_error"))
	require.NoError(t, err)
	rows = callbacksOf(t, db, id)
	require.Len(t, rows, 2)
	require.NoError(t, json.Unmarshal(rows[1].Payload, &body))
	require.Equal(t, "failed", body.Status)
	require.Equal(t, 2, body.Attempt)
	require.Equal(t, []callback.Error{{Stage: "download", Code: "decode_error", Message: "m"}}, body.Errors)

	// Photos without a callback URL queue nothing.
	plain := newPhoto(t, db, 1)
	_, err = repo.Complete(ctx, created(plain, 1, 320, 160))
	require.NoError(t, err)
	require.Empty(t, callbacksOf(t, db, plain))
}

// TestJobCallbackQueuedWhenTheJobFinishes: a job's callback is queued by
// the event that finishes its last group, once.
func TestJobCallbackQueuedWhenTheJobFinishes(t *testing.T) {
	db := postgres.MustOpenDB(t)
	repo := postgres.New(db, func() {}, func() {})
	ctx := context.Background()
	url := "https://hooks.example.test/job"
	job := database.Job{Kind: "native", Total: 2, GroupsTotal: 2, Status: database.JobOngoing, CallbackURL: &url}
	require.NoError(t, db.Create(&job).Error)
	var ids []string
	for _, key := range []string{"S1", "S2"} {
		require.NoError(t, db.Create(&database.JobGroup{JobUUID: job.UUID, GroupKey: key, Status: database.JobOngoing, Total: 1}).Error)
		seq := 0
		p := database.Photo{URL: "http://example.test/" + key + ".jpg", Status: database.StatusPending, Attempt: 1,
			Renditions: []string{"thumb"}, JobUUID: &job.UUID, GroupKey: &key, GroupSeq: &seq}
		require.NoError(t, db.Create(&p).Error)
		ids = append(ids, p.UUID)
	}
	_, err := repo.Complete(ctx, created(ids[0], 1, 320, 160))
	require.NoError(t, err)
	require.Empty(t, callbacksOf(t, db, job.UUID), "the job is still going")
	for range 2 {
		_, err = repo.Fail(ctx, &event.PhotoFailed{Header: event.NewHeader(ids[1], 1), Stage: event.StageDownload,
			Code: "download_http_status", Message: "source answered 404 Not Found"})
		require.NoError(t, err)
	}
	rows := callbacksOf(t, db, job.UUID)
	require.Len(t, rows, 1)
	require.Equal(t, database.CallbackKindJob, rows[0].Kind)
	var body callback.Job
	require.NoError(t, json.Unmarshal(rows[0].Payload, &body))
	require.Equal(t, callback.Job{
		Type: "job", ID: job.UUID, Kind: "native", Status: "failed", FinishedAt: body.FinishedAt, Total: 2,
		Counts: map[string]int{"completed": 1, "failed": 1, "skipped": 0},
		Groups: map[string]int{"total": 2, "failed": 1},
		Errors: []callback.GroupError{{Group: "S2", Error: "source answered 404 Not Found", PhotoID: ids[1]}},
	}, body)
	require.False(t, body.FinishedAt.IsZero())
	for _, id := range ids {
		require.Empty(t, callbacksOf(t, db, id), "job photos have no callback of their own")
	}
}

// receiver is a loopback callback target that answers with the next of
// its steps ("500", "timeout", "200", ...; the last one repeats) and
// keeps what it received.
type receiver struct {
	srv   *httptest.Server
	mu    sync.Mutex
	steps []string
	got   []received
}

type received struct {
	body                           []byte
	signature, delivery, attempt   string
	userAgent, contentType, method string
}

func newReceiver(t *testing.T, steps ...string) *receiver {
	t.Helper()
	r := &receiver{steps: steps}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		step := r.steps[min(len(r.got), len(r.steps)-1)]
		r.got = append(r.got, received{
			body: body, signature: req.Header.Get(callback.SignatureHeader), delivery: req.Header.Get(callback.DeliveryHeader),
			attempt: req.Header.Get(callback.AttemptHeader), userAgent: req.UserAgent(),
			contentType: req.Header.Get("Content-Type"), method: req.Method,
		})
		r.mu.Unlock()
		switch step {
		case "timeout":
			select {
			case <-req.Context().Done():
			case <-time.After(5 * time.Second):
			}
		case "redirect":
			http.Redirect(w, req, "http://169.254.169.254/", http.StatusFound)
		case "200":
			w.WriteHeader(http.StatusOK)
		case "503":
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) received() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

type dispatcherOpts struct {
	secret      string
	allowed     []netip.Prefix
	maxAttempts int
}

// startDispatcher runs a dispatcher over db with fast retries until the
// test ends.
func startDispatcher(t *testing.T, db *gorm.DB, o dispatcherOpts) *app.Dispatcher {
	t.Helper()
	sender := webhook.New(webhook.Config{
		Secret: []byte(o.secret), Timeout: 300 * time.Millisecond, UserAgent: "photopipe-callback-test/1", AllowedNetworks: o.allowed,
	})
	t.Cleanup(sender.CloseIdleConnections)
	d, err := app.NewDispatcher(postgres.NewCallbackStore(db), sender, app.DispatchConfig{
		MaxAttempts: max(o.maxAttempts, 1), BackoffMin: 20 * time.Millisecond, BackoffMax: 80 * time.Millisecond,
		Workers: 4, PollInterval: 50 * time.Millisecond, Lease: 5 * time.Second,
	}, slog.New(slog.NewTextHandler(t.Output(), nil)))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return d
}

func queueCallback(t *testing.T, db *gorm.DB, url, payload string) string {
	t.Helper()
	var id string
	require.NoError(t, db.Raw(`INSERT INTO callbacks (kind, subject_id, url, payload)
		VALUES ('photo', gen_random_uuid(), ?, ?::jsonb) RETURNING id`, url, payload).Scan(&id).Error)
	return id
}

func waitFinal(t *testing.T, db *gorm.DB, id string) database.Callback {
	t.Helper()
	var cb database.Callback
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		require.NoError(c, db.Take(&cb, "id = ?", id).Error)
		require.NotEqual(c, database.CallbackPending, cb.Status)
	}, 15*time.Second, 20*time.Millisecond)
	return cb
}

// TestDispatcherRetriesUntilDelivered: a receiver that fails twice (a 500,
// then no answer in time) and then accepts gets the same signed body three
// times, and each try is recorded.
func TestDispatcherRetriesUntilDelivered(t *testing.T) {
	db := postgres.MustOpenDB(t)
	rcv := newReceiver(t, "500", "timeout", "200")
	payload := `{"id": "p1", "type": "photo", "status": "completed"}`
	id := queueCallback(t, db, rcv.srv.URL+"/hook?token=abc", payload)
	d := startDispatcher(t, db, dispatcherOpts{secret: testSecret, allowed: loopback, maxAttempts: 5})
	d.Notify()

	cb := waitFinal(t, db, id)
	require.Equal(t, database.CallbackDelivered, cb.Status)
	require.Equal(t, 3, cb.Attempts)
	require.NotNil(t, cb.FinishedAt)
	require.Nil(t, cb.LastError)

	got := rcv.received()
	require.Len(t, got, 3)
	for i, r := range got {
		require.Equal(t, http.MethodPost, r.method)
		require.Equal(t, "application/json", r.contentType)
		require.Equal(t, "photopipe-callback-test/1", r.userAgent)
		require.Equal(t, id, r.delivery, "the same delivery id on every try")
		require.Equal(t, string(rune('1'+i)), r.attempt)
		require.JSONEq(t, payload, string(r.body))
		require.True(t, callback.Verify([]byte(testSecret), r.body, r.signature), "signature %q", r.signature)
		require.False(t, callback.Verify([]byte("another secret"), r.body, r.signature))
	}

	attempts := attemptsOf(t, db, id)
	require.Len(t, attempts, 3)
	require.Equal(t, 500, *attempts[0].StatusCode)
	require.Contains(t, *attempts[0].Error, "500")
	require.Nil(t, attempts[1].StatusCode)
	require.Contains(t, *attempts[1].Error, "timed out")
	require.GreaterOrEqual(t, attempts[1].DurationMS, int64(250))
	require.Equal(t, 200, *attempts[2].StatusCode)
	require.Nil(t, attempts[2].Error)
	for i, a := range attempts {
		require.Equal(t, i+1, a.Attempt)
		require.False(t, a.StartedAt.IsZero())
	}
}

// TestDispatcherGivesUp: after CALLBACK_MAX_ATTEMPTS failed tries the
// callback is failed with the last error, and not tried again.
func TestDispatcherGivesUp(t *testing.T) {
	db := postgres.MustOpenDB(t)
	rcv := newReceiver(t, "503", "redirect", "503")
	id := queueCallback(t, db, rcv.srv.URL, `{"id": "p2"}`)
	startDispatcher(t, db, dispatcherOpts{secret: testSecret, allowed: loopback, maxAttempts: 3})

	cb := waitFinal(t, db, id)
	require.Equal(t, database.CallbackFailed, cb.Status)
	require.Equal(t, 3, cb.Attempts)
	require.Contains(t, *cb.LastError, "503")
	require.Contains(t, *cb.LastError, "giving up")
	attempts := attemptsOf(t, db, id)
	require.Len(t, attempts, 3)
	require.Equal(t, 302, *attempts[1].StatusCode)
	require.Contains(t, *attempts[1].Error, "redirects are not followed")
	time.Sleep(300 * time.Millisecond) // several backoffs and polls
	require.Len(t, rcv.received(), 3, "no try after the last")
}

// TestDispatcherRefusesForbiddenAddresses: a callback to an address the
// rules forbid (loopback here, as nothing is allowed) is one recorded,
// failed try that never reaches the target.
func TestDispatcherRefusesForbiddenAddresses(t *testing.T) {
	db := postgres.MustOpenDB(t)
	rcv := newReceiver(t, "200")
	ids := []string{
		queueCallback(t, db, rcv.srv.URL, `{"id": "p3"}`),
		queueCallback(t, db, "http://169.254.169.254/latest/meta-data/", `{"id": "p4"}`),
		queueCallback(t, db, "http://[::ffff:10.0.0.1]:8080/hook", `{"id": "p5"}`),
	}
	startDispatcher(t, db, dispatcherOpts{secret: testSecret, maxAttempts: 5})
	for _, id := range ids {
		cb := waitFinal(t, db, id)
		require.Equal(t, database.CallbackFailed, cb.Status)
		require.Equal(t, 1, cb.Attempts, "not retried: the address will not become allowed")
		require.Contains(t, *cb.LastError, "not allowed")
		attempts := attemptsOf(t, db, id)
		require.Len(t, attempts, 1)
		require.Nil(t, attempts[0].StatusCode)
		require.Contains(t, *attempts[0].Error, "not allowed")
	}
	require.Empty(t, rcv.received())
}

// TestDispatcherWithoutSecret: without CALLBACK_SECRET nothing is sent
// unsigned; the callback fails with the reason.
func TestDispatcherWithoutSecret(t *testing.T) {
	db := postgres.MustOpenDB(t)
	rcv := newReceiver(t, "200")
	id := queueCallback(t, db, rcv.srv.URL, `{"id": "p6"}`)
	startDispatcher(t, db, dispatcherOpts{allowed: loopback, maxAttempts: 5})
	cb := waitFinal(t, db, id)
	require.Equal(t, database.CallbackFailed, cb.Status)
	require.Contains(t, *cb.LastError, "CALLBACK_SECRET is not set")
	require.Len(t, attemptsOf(t, db, id), 1)
	require.Empty(t, rcv.received())
}

// TestDispatchersShareTheTable: replicas claim with SKIP LOCKED and a
// lease, so every callback is sent exactly once.
func TestDispatchersShareTheTable(t *testing.T) {
	db := postgres.MustOpenDB(t)
	var hits sync.Map
	var total atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := hits.LoadOrStore(r.Header.Get(callback.DeliveryHeader), new(atomic.Int32))
		n.(*atomic.Int32).Add(1)
		total.Add(1)
		time.Sleep(5 * time.Millisecond)
	}))
	t.Cleanup(srv.Close)
	var ids []string
	for range 40 {
		ids = append(ids, queueCallback(t, db, srv.URL, `{}`))
	}
	for range 3 {
		startDispatcher(t, db, dispatcherOpts{secret: testSecret, allowed: loopback, maxAttempts: 5}).Notify()
	}
	for _, id := range ids {
		require.Equal(t, database.CallbackDelivered, waitFinal(t, db, id).Status)
		n, ok := hits.Load(id)
		require.True(t, ok)
		require.Equal(t, int32(1), n.(*atomic.Int32).Load(), "callback %s sent once", id)
	}
	require.Equal(t, int32(len(ids)), total.Load())
}

// TestReleaseGivesTheTryBack: a released claim is due again at once with
// the same try number, and a claim lost to another replica is left alone.
func TestReleaseGivesTheTryBack(t *testing.T) {
	db := postgres.MustOpenDB(t)
	store := postgres.NewCallbackStore(db)
	ctx := context.Background()
	id := queueCallback(t, db, "http://127.0.0.1:1/hook", `{"id": "p1"}`)
	claim := func() []app.Delivery {
		t.Helper()
		due, err := store.Claim(ctx, 10, time.Minute)
		require.NoError(t, err)
		var mine []app.Delivery
		for _, d := range due {
			if d.ID == id {
				mine = append(mine, d)
			}
		}
		return mine
	}
	first := claim()
	require.Len(t, first, 1)
	require.Equal(t, 1, first[0].Attempt)
	require.Empty(t, claim(), "leased")
	require.NoError(t, store.Release(ctx, id, 1))
	again := claim()
	require.Len(t, again, 1, "due again at once")
	require.Equal(t, 1, again[0].Attempt, "the same try")
	require.NoError(t, store.Release(ctx, id, 7), "not this claim: nothing changes")
	require.Empty(t, claim())
	var cb database.Callback
	require.NoError(t, db.Take(&cb, "id = ?", id).Error)
	require.Equal(t, 1, cb.Attempts)
	require.Empty(t, attemptsOf(t, db, id), "no try recorded")
}
