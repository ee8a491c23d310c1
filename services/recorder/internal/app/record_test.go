package app_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/services/recorder/internal/app"
	"github.com/photopipe/photopipe/shared/bus"
	"github.com/photopipe/photopipe/shared/event"
)

type fakeRepo struct {
	calls int
	err   error
}

func (f *fakeRepo) Complete(context.Context, *event.ThumbnailCreated) (bool, error) {
	f.calls++
	return false, f.err
}
func (f *fakeRepo) Fail(context.Context, *event.PhotoFailed) (bool, error) {
	f.calls++
	return true, f.err
}
func (f *fakeRepo) MarkDeadLettered(context.Context, *event.PhotoDeadLettered) (bool, error) {
	f.calls++
	return true, f.err
}

func TestRecorder(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()

	t.Run("malformed ids are permanent and never reach the database", func(t *testing.T) {
		t.Parallel()
		repo := &fakeRepo{}
		r := app.New(repo, log)
		err := r.Completed(ctx, &event.ThumbnailCreated{Header: event.NewHeader("not-a-uuid", 1)})
		require.True(t, bus.IsPermanent(err))
		err = r.Failed(ctx, &event.PhotoFailed{Header: event.NewHeader(uuid.NewString(), 0)})
		require.True(t, bus.IsPermanent(err), "attempt 0 is invalid")
		require.Zero(t, repo.calls)
	})

	t.Run("database errors are transient", func(t *testing.T) {
		t.Parallel()
		repo := &fakeRepo{err: errors.New("connection refused")}
		r := app.New(repo, log)
		err := r.Completed(ctx, &event.ThumbnailCreated{Header: event.NewHeader(uuid.NewString(), 1)})
		require.Error(t, err)
		require.False(t, bus.IsPermanent(err))
	})

	t.Run("data the database refuses is permanent", func(t *testing.T) {
		t.Parallel()
		repo := &fakeRepo{err: fmt.Errorf("apply: %w", &pgconn.PgError{Code: "22021", Message: "invalid byte sequence for encoding \"UTF8\": 0x00"})}
		r := app.New(repo, log)
		err := r.DeadLettered(ctx, &event.PhotoDeadLettered{Header: event.NewHeader(uuid.NewString(), 1), Reason: "a\x00b"})
		require.True(t, bus.IsPermanent(err), "the same event fails the same way every time: %v", err)
	})

	t.Run("stale events are acknowledged", func(t *testing.T) {
		t.Parallel()
		repo := &fakeRepo{}
		r := app.New(repo, log)
		require.NoError(t, r.Completed(ctx, &event.ThumbnailCreated{Header: event.NewHeader(uuid.NewString(), 1)}))
		require.NoError(t, r.DeadLettered(ctx, &event.PhotoDeadLettered{Header: event.NewHeader(uuid.NewString(), 1)}))
		require.Equal(t, 2, repo.calls)
	})
}
