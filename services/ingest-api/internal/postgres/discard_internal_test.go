package postgres

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/shared/database"
	"github.com/photopipe/photopipe/shared/deadletter"
	"github.com/photopipe/photopipe/shared/event"
)

// TestEndDiscarded: each discarded message that carried a photo's attempt
// becomes a PhotoFailed (code discarded, retryable, the stage of the
// queue's service, the dead letter's correlation id) in the outbox; a
// dead-letter mark or a message of no attempt becomes nothing.
func TestEndDiscarded(t *testing.T) {
	ctx := context.Background()
	db := mustOpenDB(t, 2)
	var notified atomic.Int32
	r := New(db, func() { notified.Add(1) })
	const a, b = "0b4c7a52-6d0e-4a8e-9a43-2f3d2f1c9b11", "5f0f3c1e-2b7e-4d8b-9c8e-1f2e3d4c5b6a"
	require.NoError(t, r.EndDiscarded(ctx, "resizer", []deadletter.Entry{
		{PhotoID: a, Attempt: 2, Event: event.TopicPhotoDownloaded, CorrelationID: "corr-a", Reason: "store rendition: disk full"},
		{PhotoID: b, Attempt: 1, Event: "PhotoDeadLettered", CorrelationID: "corr-b"},
		{PhotoID: b, Attempt: 0, Event: event.TopicPhotoDownloaded},
		{Event: event.TopicPhotoDownloaded, Attempt: 1},
	}))
	var rows []database.OutboxMessage
	require.NoError(t, db.Order("id").Find(&rows).Error)
	require.Len(t, rows, 1)
	require.Equal(t, event.TopicPhotoFailed, rows[0].Topic)
	require.Equal(t, "corr-a", rows[0].Metadata[middleware.CorrelationIDMetadataKey])
	var f event.PhotoFailed
	require.NoError(t, json.Unmarshal(rows[0].Payload, &f))
	require.Equal(t, a, f.PhotoID)
	require.Equal(t, 2, f.Attempt)
	require.Equal(t, event.StageResize, f.Stage)
	require.Equal(t, event.CodeDiscarded, f.Code)
	require.True(t, f.Retryable)
	require.Contains(t, f.Message, "store rendition: disk full")
	require.EqualValues(t, 1, notified.Load(), "the relay is woken")

	require.NoError(t, r.EndDiscarded(ctx, "downloader", []deadletter.Entry{{PhotoID: b, Attempt: 1, Event: event.TopicPhotoRequested}}))
	require.NoError(t, db.Order("id").Find(&rows).Error)
	require.Len(t, rows, 2)
	require.NoError(t, json.Unmarshal(rows[1].Payload, &f))
	require.Equal(t, event.StageDownload, f.Stage)

	require.Error(t, r.EndDiscarded(ctx, "nobody", []deadletter.Entry{{PhotoID: b, Attempt: 1, Event: event.TopicPhotoRequested}}))
}
