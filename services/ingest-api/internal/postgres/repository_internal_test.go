package postgres

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/services/ingest-api/internal/app"
	"github.com/photopipe/photopipe/shared/database"
	"github.com/photopipe/photopipe/shared/event"
	"github.com/photopipe/photopipe/shared/testenv"
)

// TestStartAttemptsComparesAndSwaps: a photo that changed after it was
// read is not moved and gets no event; RequestProcessing then decides
// again on what is stored now.
func TestStartAttemptsComparesAndSwaps(t *testing.T) {
	ctx := context.Background()
	db, err := database.Open(ctx, database.Config{URL: testenv.Postgres(t), MaxOpenConns: 4, MaxIdleConns: 2, ConnectTimeout: 30e9, Migrate: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = database.Close(db) })
	notified := 0
	r := New(db, func() { notified++ })

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

	stale := read()
	// Another request wins the race between this one's read and write.
	require.NoError(t, db.Exec("UPDATE photos SET attempt = 1 WHERE uuid = ?", p.UUID).Error)
	won, err := r.startAttempts(ctx, []attemptSwap{{Photo: stale, CorrelationID: "corr-1"}})
	require.NoError(t, err)
	require.Empty(t, won)
	require.Empty(t, outbox(), "no event for a photo that changed")
	require.Equal(t, 1, read().Attempt)

	// The recorder finishes attempt 1; a reprocess with new renditions,
	// from a fresh read, moves the photo to attempt 2, processing it.
	require.NoError(t, db.Exec("UPDATE photos SET status = 'completed', status_attempt = 1, updated_at = now() - interval '1 hour' WHERE uuid = ?", p.UUID).Error)
	before := read()
	won, err = r.startAttempts(ctx, []attemptSwap{{Photo: before, Renditions: []string{"small"}, CorrelationID: "corr-2"}})
	require.NoError(t, err)
	require.Equal(t, map[string]bool{p.UUID: true}, won)
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

	// Through RequestProcessing: the attempt just queued is processing
	// (even for a reprocess), an unknown photo is not found, nothing more
	// is written.
	res, err := r.RequestProcessing(ctx, []string{p.UUID, "00000000-0000-0000-0000-000000000000"}, app.ProcessOptions{Reprocess: true}, "corr-3")
	require.NoError(t, err)
	require.Equal(t, []app.ProcessResult{
		{UUID: p.UUID, Outcome: app.OutcomeAlreadyProcessing, Attempt: 2},
		{UUID: "00000000-0000-0000-0000-000000000000", Outcome: app.OutcomeNotFound},
	}, res)
	require.Len(t, outbox(), 1)
	require.Zero(t, notified)

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
	require.Equal(t, 1, notified)
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
