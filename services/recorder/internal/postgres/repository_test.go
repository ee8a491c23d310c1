package postgres_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/photopipe/photopipe/services/recorder/internal/postgres"
	"github.com/photopipe/photopipe/shared/database"
	"github.com/photopipe/photopipe/shared/event"
)

// newPhoto inserts a photo as the ingest-api leaves it when it requests
// attempt `attempt`: processing at that attempt (pending when 0).
func newPhoto(t *testing.T, db *gorm.DB, attempt int) string {
	t.Helper()
	p := database.Photo{URL: "http://example.test/a.jpg", Status: database.StatusProcessing, Attempt: attempt, StatusAttempt: attempt, Renditions: []string{"thumb"}}
	if attempt == 0 {
		p.Status = database.StatusPending
	}
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

	t.Run("each event twice", func(t *testing.T) {
		id := newPhoto(t, db, 1)
		e := created(id, 1, 320, 160)
		e.OriginalKey, e.Filename, e.ContentType, e.Bytes = "originals/"+id+"/a.jpg", "a.jpg", "image/jpeg", 99
		ok, err := repo.Complete(ctx, e)
		require.NoError(t, err)
		require.True(t, ok)
		ok, err = repo.Complete(ctx, e)
		require.NoError(t, err)
		require.False(t, ok, "a duplicate changes nothing")

		p := load(t, db, id)
		require.Equal(t, database.StatusCompleted, p.Status)
		require.Len(t, p.Thumbnails, 1, "no duplicate rows")
		require.Equal(t, 320, p.Thumbnails[0].Width)
		require.Equal(t, "originals/"+id+"/a.jpg", *p.OriginalKey, "the original comes with the completion")
		require.Equal(t, "a.jpg", p.Filename)
		require.Equal(t, "image/jpeg", *p.ContentType)
		require.EqualValues(t, 99, *p.Bytes)
		require.Equal(t, 1000, *p.Width)
		require.NotNil(t, p.CompletedAt)
	})

	t.Run("a late event never moves a photo backwards", func(t *testing.T) {
		id := newPhoto(t, db, 1)
		ok, err := repo.Complete(ctx, created(id, 1, 320, 160))
		require.NoError(t, err)
		require.True(t, ok)
		ok, err = repo.Fail(ctx, failed(id, 1, event.CodeDecodeError))
		require.NoError(t, err)
		require.False(t, ok, "the first final state wins within an attempt")
		p := load(t, db, id)
		require.Equal(t, database.StatusCompleted, p.Status)
		require.Nil(t, p.FailureCode)
	})

	t.Run("a newer attempt supersedes, an older one is ignored", func(t *testing.T) {
		id := newPhoto(t, db, 2) // a failed photo requested again
		ok, err := repo.Fail(ctx, failed(id, 1, event.CodeDownloadTimeout))
		require.NoError(t, err)
		require.False(t, ok, "the failure of the older attempt is ignored")
		ok, err = repo.Complete(ctx, created(id, 1, 10, 10))
		require.NoError(t, err)
		require.False(t, ok, "events of an older attempt are ignored")
		require.Equal(t, database.StatusProcessing, load(t, db, id).Status)
		ok, err = repo.Complete(ctx, created(id, 2, 320, 160))
		require.NoError(t, err)
		require.True(t, ok)
		p := load(t, db, id)
		require.Equal(t, database.StatusCompleted, p.Status)
		require.Equal(t, 2, p.StatusAttempt)
		require.Len(t, p.Thumbnails, 1)
		require.Equal(t, 320, p.Thumbnails[0].Width)
	})

	t.Run("a row requested by an earlier version (still pending) completes", func(t *testing.T) {
		p := database.Photo{URL: "http://example.test/a.jpg", Status: database.StatusPending, Attempt: 1, Renditions: []string{"thumb"}}
		require.NoError(t, db.Create(&p).Error)
		ok, err := repo.Complete(ctx, created(p.UUID, 1, 320, 160))
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, database.StatusCompleted, load(t, db, p.UUID).Status)
	})

	t.Run("a resize failure keeps the stored original", func(t *testing.T) {
		id := newPhoto(t, db, 1)
		f := failed(id, 1, event.CodeDecodeError)
		f.Stage, f.OriginalKey, f.Filename, f.ContentType, f.Bytes, f.Width, f.Height =
			event.StageResize, "originals/"+id+"/bad.jpg", "bad.jpg", "image/jpeg", 77, 640, 480
		ok, err := repo.Fail(ctx, f)
		require.NoError(t, err)
		require.True(t, ok)
		p := load(t, db, id)
		require.Equal(t, database.StatusFailed, p.Status)
		require.Equal(t, "originals/"+id+"/bad.jpg", *p.OriginalKey)
		require.Equal(t, "bad.jpg", p.Filename)
		require.Equal(t, "image/jpeg", *p.ContentType)
		require.EqualValues(t, 77, *p.Bytes)
		require.Equal(t, [2]int{640, 480}, [2]int{*p.Width, *p.Height})
	})

	t.Run("failure records stage, code and message", func(t *testing.T) {
		id := newPhoto(t, db, 1)
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
		require.Nil(t, p.OriginalKey, "a download failure names no original")
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

	// Text Postgres cannot store is a data exception (class 22), which
	// the recorder treats as permanent.
	bad := dl(newPhoto(t, db, 1), 1)
	bad.Reason = "a\x00b"
	_, err = repo.MarkDeadLettered(ctx, bad)
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	require.Equal(t, "22", pgErr.Code[:2], "%v", err)
}

// TestDeadLetterMarkOfAnEarlierVersionsRow: a photo requested by an
// earlier version is still pending at its attempt (that recorder set
// processing on PhotoRequested); a mark moves it to processing, and the
// final state clears the mark.
func TestDeadLetterMarkOfAnEarlierVersionsRow(t *testing.T) {
	db := postgres.MustOpenDB(t)
	repo := postgres.New(db, func() {}, func() {})
	ctx := context.Background()
	p := database.Photo{URL: "http://example.test/a.jpg", Status: database.StatusPending, Attempt: 1, Renditions: []string{"thumb"}}
	require.NoError(t, db.Create(&p).Error)
	ok, err := repo.MarkDeadLettered(ctx, &event.PhotoDeadLettered{Header: event.NewHeader(p.UUID, 1), Service: "downloader",
		Queue: "photo-processor", Reason: "broken"})
	require.NoError(t, err)
	require.True(t, ok)
	got := load(t, db, p.UUID)
	require.Equal(t, database.StatusProcessing, got.Status)
	require.Equal(t, 1, got.StatusAttempt)
	require.Equal(t, "downloader", *got.DeadLetterService)

	ok, err = repo.Fail(ctx, failed(p.UUID, 1, event.CodeDownloadTimeout))
	require.NoError(t, err)
	require.True(t, ok)
	got = load(t, db, p.UUID)
	require.Equal(t, database.StatusFailed, got.Status)
	require.Nil(t, got.DeadLetterService, "the final state clears the mark")
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
	errs := make(chan error, n*4)
	for _, id := range ids {
		// A dead-letter mark (of a message later replayed) may come
		// before or after the completion; every event comes twice.
		steps := []func() error{
			func() error {
				e := created(id, 1, 320, 160)
				e.OriginalKey, e.ContentType, e.Bytes = "originals/"+id+"/a.jpg", "image/jpeg", 99
				_, err := repo.Complete(ctx, e)
				return err
			},
			func() error {
				_, err := repo.MarkDeadLettered(ctx, &event.PhotoDeadLettered{Header: event.NewHeader(id, 1),
					Service: "resizer", Queue: "PhotoDownloaded_resizer", Reason: "storage unavailable"})
				return err
			},
		}
		for _, s := range append(steps, steps...) {
			go func() { errs <- s() }()
		}
	}
	for range n * 4 {
		require.NoError(t, <-errs)
	}
	for _, id := range ids {
		p := load(t, db, id)
		require.Equal(t, database.StatusCompleted, p.Status)
		require.Len(t, p.Thumbnails, 1)
		require.Equal(t, "originals/"+id+"/a.jpg", *p.OriginalKey)
		require.Nil(t, p.DeadLetterService, "a mark of a completed attempt is not kept")
	}
	select {
	case <-notified:
		t.Fatal("no outbox event was written, the relay need not be woken")
	default:
	}
}
