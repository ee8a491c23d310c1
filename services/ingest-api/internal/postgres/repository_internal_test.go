package postgres

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/services/ingest-api/internal/app"
	"github.com/photopipe/photopipe/shared/database"
	"github.com/photopipe/photopipe/shared/event"
)

// TestStartAttemptsComparesAndSwaps: a photo that changes while the
// statement that would queue it waits for its row is not moved and gets no
// event; RequestProcessing then decides again on what is stored now.
func TestStartAttemptsComparesAndSwaps(t *testing.T) {
	ctx := context.Background()
	db := mustOpenDB(t, 4)
	var notified atomic.Int32
	r := New(db, func() { notified.Add(1) })

	p := database.Photo{URL: "http://example.test/a.jpg", Status: database.StatusPending, Renditions: []string{"thumb"}}
	require.NoError(t, db.Create(&p).Error)
	read := func() database.Photo {
		var got database.Photo
		require.NoError(t, db.Take(&got, "uuid = ?", p.UUID).Error)
		return got
	}
	outbox := func() []database.OutboxMessage {
		var rows []database.OutboxMessage
		require.NoError(t, db.Order("id").Find(&rows).Error)
		return rows
	}

	// Another request wins the race: it holds the photo's row, moved to
	// attempt 1, while this one's statement waits for the row; it commits
	// once this one is waiting.
	other := db.Begin()
	require.NoError(t, other.Error)
	require.NoError(t, other.Exec("UPDATE photos SET attempt = 1, status_attempt = 1, status = 'processing' WHERE uuid = ?", p.UUID).Error)
	type answer struct {
		res []app.ProcessResult
		err error
	}
	answered := make(chan answer, 1)
	go func() {
		res, err := r.RequestProcessing(ctx, []string{p.UUID}, app.ProcessOptions{}, "corr-1")
		answered <- answer{res, err}
	}()
	require.Eventually(t, func() bool {
		var waiting int
		require.NoError(t, db.Raw("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()").Scan(&waiting).Error)
		return waiting == 1
	}, 10*time.Second, time.Millisecond, "the statement waits for the row")
	require.NoError(t, other.Commit().Error)
	a := <-answered
	require.NoError(t, a.err)
	require.Equal(t, []app.ProcessResult{{UUID: p.UUID, Outcome: app.OutcomeAlreadyProcessing, Attempt: 1}}, a.res)
	require.Empty(t, outbox(), "no event for a photo that changed")
	require.Equal(t, 1, read().Attempt)
	require.Zero(t, notified.Load())

	// The recorder finishes attempt 1; a reprocess with new renditions
	// moves the photo to attempt 2, processing it.
	require.NoError(t, db.Exec("UPDATE photos SET status = 'completed', status_attempt = 1, updated_at = now() - interval '1 hour' WHERE uuid = ?", p.UUID).Error)
	before := read()
	res, err := r.RequestProcessing(ctx, []string{p.UUID}, app.ProcessOptions{Renditions: []string{"small"}, Reprocess: true}, "corr-2")
	require.NoError(t, err)
	require.Equal(t, []app.ProcessResult{{UUID: p.UUID, Outcome: app.OutcomeQueued, Attempt: 2}}, res)
	require.EqualValues(t, 1, notified.Load())
	now := read()
	require.Equal(t, 2, now.Attempt)
	require.Equal(t, database.StatusProcessing, now.Status)
	require.Equal(t, 2, now.StatusAttempt)
	require.True(t, now.UpdatedAt.After(before.UpdatedAt), "updated_at moves on")
	require.Equal(t, []string{"small"}, now.Renditions)
	rows := outbox()
	require.Len(t, rows, 1)
	require.Equal(t, event.Topic(&event.PhotoRequested{}), rows[0].Topic)
	require.Equal(t, "corr-2", rows[0].Metadata[middleware.CorrelationIDMetadataKey])
	var e event.PhotoRequested
	require.NoError(t, json.Unmarshal(rows[0].Payload, &e))
	require.Equal(t, p.UUID, e.PhotoID)
	require.Equal(t, 2, e.Attempt)
	require.Equal(t, []string{"small"}, e.Renditions)
	require.Equal(t, p.URL, e.URL)

	// The attempt just queued is processing
	// (even for a reprocess), an unknown photo is not found, nothing more
	// is written.
	res, err = r.RequestProcessing(ctx, []string{p.UUID, "00000000-0000-0000-0000-000000000000"}, app.ProcessOptions{Reprocess: true}, "corr-3")
	require.NoError(t, err)
	require.Equal(t, []app.ProcessResult{
		{UUID: p.UUID, Outcome: app.OutcomeAlreadyProcessing, Attempt: 2},
		{UUID: "00000000-0000-0000-0000-000000000000", Outcome: app.OutcomeNotFound},
	}, res)
	require.Len(t, outbox(), 1)
	require.EqualValues(t, 1, notified.Load())

	// A row queued before ingest-api marked processing itself: attempt 3
	// requested, the recorder still at attempt 2. It is reported queued.
	require.NoError(t, db.Exec("UPDATE photos SET attempt = 3, status = 'completed' WHERE uuid = ?", p.UUID).Error)
	res, err = r.RequestProcessing(ctx, []string{p.UUID}, app.ProcessOptions{Reprocess: true}, "corr-4")
	require.NoError(t, err)
	require.Equal(t, []app.ProcessResult{{UUID: p.UUID, Outcome: app.OutcomeAlreadyQueued, Attempt: 3}}, res)
	require.Len(t, outbox(), 1)

	// Attempt 3 failed and was dead-lettered: the next request clears both
	// with the move to attempt 4.
	require.NoError(t, db.Exec(`UPDATE photos SET status = 'failed', status_attempt = 3,
		failure_stage = 'download', failure_code = 'download_http_status', failure_message = 'HTTP 503', failure_retryable = true,
		dead_letter_service = 'downloader', dead_letter_queue = 'dead-letter.downloader', dead_letter_reason = 'gave up',
		dead_lettered_at = now() WHERE uuid = ?`, p.UUID).Error)
	res, err = r.RequestProcessing(ctx, []string{p.UUID}, app.ProcessOptions{}, "corr-5")
	require.NoError(t, err)
	require.Equal(t, []app.ProcessResult{{UUID: p.UUID, Outcome: app.OutcomeQueued, Attempt: 4}}, res)
	require.Len(t, outbox(), 2)
	require.EqualValues(t, 2, notified.Load())
	now = read()
	require.Equal(t, database.StatusProcessing, now.Status)
	require.Equal(t, 4, now.Attempt)
	require.Equal(t, 4, now.StatusAttempt)
	require.Nil(t, now.FailureStage)
	require.Nil(t, now.FailureCode)
	require.Nil(t, now.FailureMessage)
	require.Nil(t, now.FailureRetryable)
	require.Nil(t, now.DeadLetterService)
	require.Nil(t, now.DeadLetterQueue)
	require.Nil(t, now.DeadLetterReason)
	require.Nil(t, now.DeadLetteredAt)
}
