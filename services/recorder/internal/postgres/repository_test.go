package postgres_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/photopipe/photopipe/services/recorder/internal/postgres"
	"github.com/photopipe/photopipe/shared/database"
	"github.com/photopipe/photopipe/shared/event"
)

func newPhoto(t *testing.T, db *gorm.DB, attempt int) string {
	t.Helper()
	p := database.Photo{URL: "http://example.test/a.jpg", Status: database.StatusPending, Attempt: attempt, Renditions: []string{"thumb"}}
	require.NoError(t, db.Create(&p).Error)
	return p.UUID
}

func load(t *testing.T, db *gorm.DB, id string) database.Photo {
	t.Helper()
	var p database.Photo
	require.NoError(t, db.Preload("Thumbnails").Take(&p, "uuid = ?", id).Error)
	return p
}

func created(id string, attempt int, w, h int) *event.ThumbnailCreated {
	return &event.ThumbnailCreated{
		Header: event.NewHeader(id, attempt), Width: 1000, Height: 500, Pages: 1,
		Renditions: []event.Rendition{{Name: "thumb", Key: "thumbnails/" + id + "/thumb.jpg", Width: w, Height: h, Format: "jpeg", Bytes: 123}},
	}
}

func failed(id string, attempt int, code string) *event.PhotoFailed {
	return &event.PhotoFailed{Header: event.NewHeader(id, attempt), Stage: event.StageDownload, Code: code, Message: "m"}
}

func TestLifecycleAndIdempotency(t *testing.T) {
	db := postgres.MustOpenDB(t)
	repo := postgres.New(db, func() {}, func() {})
	ctx := context.Background()

	t.Run("in order, each event twice", func(t *testing.T) {
		id := newPhoto(t, db, 1)
		for range 2 {
			_, err := repo.MarkProcessing(ctx, &event.PhotoRequested{Header: event.NewHeader(id, 1)})
			require.NoError(t, err)
		}
		require.Equal(t, database.StatusProcessing, load(t, db, id).Status)
		for range 2 {
			_, err := repo.RecordOriginal(ctx, &event.PhotoDownloaded{Header: event.NewHeader(id, 1),
				OriginalKey: "originals/" + id + "/a.jpg", ContentType: "image/jpeg", Bytes: 99, Width: 1000, Height: 500, Filename: "a.jpg"})
			require.NoError(t, err)
		}
		ok, err := repo.Complete(ctx, created(id, 1, 320, 160))
		require.NoError(t, err)
		require.True(t, ok)
		ok, err = repo.Complete(ctx, created(id, 1, 320, 160))
		require.NoError(t, err)
		require.False(t, ok, "a duplicate changes nothing")

		p := load(t, db, id)
		require.Equal(t, database.StatusCompleted, p.Status)
		require.Len(t, p.Thumbnails, 1, "no duplicate rows")
		require.Equal(t, 320, p.Thumbnails[0].Width)
		require.Equal(t, "originals/"+id+"/a.jpg", *p.OriginalKey)
		require.NotNil(t, p.CompletedAt)
	})

	t.Run("late events never move a photo backwards", func(t *testing.T) {
		id := newPhoto(t, db, 1)
		ok, err := repo.Complete(ctx, created(id, 1, 320, 160))
		require.NoError(t, err)
		require.True(t, ok, "completion may arrive first")
		ok, err = repo.MarkProcessing(ctx, &event.PhotoRequested{Header: event.NewHeader(id, 1)})
		require.NoError(t, err)
		require.False(t, ok)
		ok, err = repo.Fail(ctx, failed(id, 1, event.CodeDecodeError))
		require.NoError(t, err)
		require.False(t, ok, "the first final state wins within an attempt")
		_, err = repo.RecordOriginal(ctx, &event.PhotoDownloaded{Header: event.NewHeader(id, 1), OriginalKey: "originals/" + id + "/a.jpg", ContentType: "image/jpeg"})
		require.NoError(t, err)

		p := load(t, db, id)
		require.Equal(t, database.StatusCompleted, p.Status)
		require.Nil(t, p.FailureCode)
		require.NotNil(t, p.OriginalKey, "the original's details are kept even when they arrive last")
	})

	t.Run("a newer attempt supersedes, an older one is ignored", func(t *testing.T) {
		id := newPhoto(t, db, 2)
		_, err := repo.Fail(ctx, failed(id, 1, event.CodeDownloadTimeout))
		require.NoError(t, err)
		require.Equal(t, database.StatusFailed, load(t, db, id).Status)

		ok, err := repo.MarkProcessing(ctx, &event.PhotoRequested{Header: event.NewHeader(id, 2)})
		require.NoError(t, err)
		require.True(t, ok, "a retry moves a failed photo back to processing")
		p := load(t, db, id)
		require.Equal(t, database.StatusProcessing, p.Status)
		require.Nil(t, p.FailureCode, "the old failure is cleared")

		ok, err = repo.Complete(ctx, created(id, 1, 10, 10))
		require.NoError(t, err)
		require.False(t, ok, "events of an older attempt are ignored")
		ok, err = repo.Complete(ctx, created(id, 2, 320, 160))
		require.NoError(t, err)
		require.True(t, ok)
		p = load(t, db, id)
		require.Equal(t, database.StatusCompleted, p.Status)
		require.Equal(t, 2, p.StatusAttempt)
		require.Len(t, p.Thumbnails, 1)
		require.Equal(t, 320, p.Thumbnails[0].Width)
	})

	t.Run("failure records stage, code and message", func(t *testing.T) {
		id := newPhoto(t, db, 1)
		_, err := repo.MarkProcessing(ctx, &event.PhotoRequested{Header: event.NewHeader(id, 1)})
		require.NoError(t, err)
		f := failed(id, 1, event.CodeDownloadHTTPStatus)
		f.Message, f.Retryable = "source answered 404 Not Found", false
		ok, err := repo.Fail(ctx, f)
		require.NoError(t, err)
		require.True(t, ok)
		p := load(t, db, id)
		require.Equal(t, database.StatusFailed, p.Status)
		require.Equal(t, event.CodeDownloadHTTPStatus, *p.FailureCode)
		require.Equal(t, "source answered 404 Not Found", *p.FailureMessage)
		require.Equal(t, event.StageDownload, *p.FailureStage)
	})

	t.Run("unknown photo changes nothing", func(t *testing.T) {
		ok, err := repo.Complete(ctx, created(uuid.NewString(), 1, 1, 1))
		require.NoError(t, err)
		require.False(t, ok)
	})

	t.Run("concurrent duplicates of a completion write one set of rows", func(t *testing.T) {
		id := newPhoto(t, db, 1)
		e := created(id, 1, 320, 160)
		errs := make(chan error, 8)
		for range 8 {
			go func() { _, err := repo.Complete(ctx, e); errs <- err }()
		}
		for range 8 {
			require.NoError(t, <-errs)
		}
		require.Len(t, load(t, db, id).Thumbnails, 1)
	})
}

func TestDeadLetterMark(t *testing.T) {
	db := postgres.MustOpenDB(t)
	repo := postgres.New(db, func() {}, func() {})
	ctx := context.Background()
	dl := func(id string, attempt int) *event.PhotoDeadLettered {
		return &event.PhotoDeadLettered{Header: event.NewHeader(id, attempt), Service: "resizer",
			Queue: "PhotoDownloaded_resizer", Topic: "PhotoDownloaded", Reason: "storage unavailable"}
	}

	id := newPhoto(t, db, 1)
	_, err := repo.MarkProcessing(ctx, &event.PhotoRequested{Header: event.NewHeader(id, 1)})
	require.NoError(t, err)
	ok, err := repo.MarkDeadLettered(ctx, dl(id, 1))
	require.NoError(t, err)
	require.True(t, ok)
	p := load(t, db, id)
	require.Equal(t, database.StatusProcessing, p.Status)
	require.Equal(t, "resizer", *p.DeadLetterService)
	require.Equal(t, "storage unavailable", *p.DeadLetterReason)
	require.NotNil(t, p.DeadLetteredAt)

	// After a replay the photo moves on and the mark is cleared.
	ok, err = repo.Complete(ctx, created(id, 1, 320, 160))
	require.NoError(t, err)
	require.True(t, ok)
	p = load(t, db, id)
	require.Equal(t, database.StatusCompleted, p.Status)
	require.Nil(t, p.DeadLetterService)

	// A late dead letter of a finished attempt is ignored.
	ok, err = repo.MarkDeadLettered(ctx, dl(id, 1))
	require.NoError(t, err)
	require.False(t, ok)
}

// TestDeadLetterMarkOutOfOrder: the recorder handles events concurrently,
// so a dead-letter mark can be recorded before the event it follows. The
// mark must survive the late event, and only the event that proves the
// dead-lettered message was replayed clears it.
func TestDeadLetterMarkOutOfOrder(t *testing.T) {
	db := postgres.MustOpenDB(t)
	repo := postgres.New(db, func() {}, func() {})
	ctx := context.Background()
	dl := func(id, service string) *event.PhotoDeadLettered {
		return &event.PhotoDeadLettered{Header: event.NewHeader(id, 1), Service: service, Queue: service, Reason: "broken"}
	}
	downloaded := func(id string) *event.PhotoDownloaded {
		return &event.PhotoDownloaded{Header: event.NewHeader(id, 1), OriginalKey: "originals/" + id + "/a.jpg",
			ContentType: "image/jpeg", Bytes: 10, Filename: "a.jpg"}
	}
	requested := &event.PhotoRequested{}

	// The downloader dead-letters before the recorder saw PhotoRequested.
	id := newPhoto(t, db, 1)
	_, err := repo.MarkDeadLettered(ctx, dl(id, "downloader"))
	require.NoError(t, err)
	requested.Header = event.NewHeader(id, 1)
	_, err = repo.MarkProcessing(ctx, requested)
	require.NoError(t, err)
	p := load(t, db, id)
	require.Equal(t, database.StatusProcessing, p.Status)
	require.NotNil(t, p.DeadLetterService, "the late PhotoRequested keeps the mark")
	// Replayed, the download succeeds: the downloader's mark is cleared.
	_, err = repo.RecordOriginal(ctx, downloaded(id))
	require.NoError(t, err)
	require.Nil(t, load(t, db, id).DeadLetterService)

	// The resizer dead-letters before the recorder saw PhotoDownloaded.
	id = newPhoto(t, db, 1)
	requested.Header = event.NewHeader(id, 1)
	_, err = repo.MarkProcessing(ctx, requested)
	require.NoError(t, err)
	_, err = repo.MarkDeadLettered(ctx, dl(id, "resizer"))
	require.NoError(t, err)
	_, err = repo.RecordOriginal(ctx, downloaded(id))
	require.NoError(t, err)
	p = load(t, db, id)
	require.NotNil(t, p.DeadLetterService, "the late PhotoDownloaded keeps the resizer's mark")
	require.Equal(t, "resizer", *p.DeadLetterService)
	require.Equal(t, "originals/"+id+"/a.jpg", *p.OriginalKey)
}

// TestConcurrentLifecycles: events of many photos handled at once share
// transactions (group commit); each is applied as if alone, in any order
// and with duplicates.
func TestConcurrentLifecycles(t *testing.T) {
	db := postgres.MustOpenDB(t)
	notified := make(chan struct{}, 1)
	repo := postgres.New(db, func() {
		select {
		case notified <- struct{}{}:
		default:
		}
	}, func() {}, postgres.WithBatch(16))
	ctx := context.Background()
	const n = 40
	ids := make([]string, n)
	for i := range ids {
		ids[i] = newPhoto(t, db, 1)
	}
	errs := make(chan error, n*6)
	for _, id := range ids {
		// Completion may overtake the earlier events; every event
		// comes twice.
		steps := []func() error{
			func() error {
				_, err := repo.Complete(ctx, created(id, 1, 320, 160))
				return err
			},
			func() error {
				_, err := repo.MarkProcessing(ctx, &event.PhotoRequested{Header: event.NewHeader(id, 1)})
				return err
			},
			func() error {
				_, err := repo.RecordOriginal(ctx, &event.PhotoDownloaded{Header: event.NewHeader(id, 1),
					OriginalKey: "originals/" + id + "/a.jpg", ContentType: "image/jpeg", Bytes: 99, Width: 1000, Height: 500})
				return err
			},
		}
		for _, s := range append(steps, steps...) {
			go func() { errs <- s() }()
		}
	}
	for range n * 6 {
		require.NoError(t, <-errs)
	}
	for _, id := range ids {
		p := load(t, db, id)
		require.Equal(t, database.StatusCompleted, p.Status)
		require.Len(t, p.Thumbnails, 1)
		require.Equal(t, "originals/"+id+"/a.jpg", *p.OriginalKey)
	}
	select {
	case <-notified:
		t.Fatal("no outbox event was written, the relay need not be woken")
	default:
	}
}
