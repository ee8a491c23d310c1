package app_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/services/ingest-api/internal/app"
	"github.com/photopipe/photopipe/shared/rendition"
	"github.com/photopipe/photopipe/shared/storage"
)

// fakeUploadRepo records the uploads it is asked to register.
type fakeUploadRepo struct {
	got           []app.NewUpload
	correlationID string
	err           error
}

var _ app.UploadRepository = (*fakeUploadRepo)(nil)

func (r *fakeUploadRepo) CreateUploads(_ context.Context, uploads []app.NewUpload, correlationID string) ([]app.Photo, error) {
	if r.err != nil {
		return nil, r.err
	}
	r.got, r.correlationID = uploads, correlationID
	out := make([]app.Photo, len(uploads))
	for i, u := range uploads {
		out[i] = app.Photo{UUID: u.UUID, Status: "processing", Attempt: 1, Filename: u.Filename, Renditions: u.Renditions,
			Original: &app.Original{Key: u.Key, ContentType: u.ContentType, Bytes: u.Bytes}}
	}
	return out, nil
}

var (
	jpegHead = []byte{0xFF, 0xD8, 0xFF, 0xE0, 0, 16, 'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1}
	pdfHead  = []byte("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
)

func newUploads(tb testing.TB, maxFiles int) (*app.Uploads, *fakeUploadRepo, string) {
	tb.Helper()
	dir := tb.TempDir()
	store, err := storage.NewLocal(dir)
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = store.Close() })
	repo := &fakeUploadRepo{}
	return app.NewUploads(repo, store, rendition.DefaultPresets(), maxFiles, 2048), repo, dir
}

// files lists the regular files under dir, relative to it.
func files(tb testing.TB, dir string) []string {
	tb.Helper()
	var out []string
	require.NoError(tb, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return err
	}))
	return out
}

func TestUploadBatchCommit(t *testing.T) {
	t.Parallel()
	u, repo, dir := newUploads(t, 10)
	ctx := context.Background()
	b := u.Begin()
	jpg := append(append([]byte{}, jpegHead...), bytes.Repeat([]byte{1}, 100_000)...)
	a, err := b.Add(ctx, "holiday photo.png", bytes.NewReader(jpg)) // a JPEG named .png
	require.NoError(t, err)
	same, err := b.Add(ctx, "holiday photo.png", iotest.OneByteReader(bytes.NewReader(jpg)))
	require.NoError(t, err)
	doc, err := b.Add(ctx, `C:\scans\..\report.pdf`, bytes.NewReader(pdfHead))
	require.NoError(t, err)

	photos, err := b.Commit(ctx, app.UploadOptions{Renditions: []string{"preview", "thumb", "preview"}}, "corr-1")
	require.NoError(t, err)
	require.Len(t, photos, 3)
	require.Equal(t, "corr-1", repo.correlationID)
	require.Equal(t, []app.NewUpload{a, same, doc}, func() []app.NewUpload {
		out := append([]app.NewUpload{}, repo.got...)
		for i := range out {
			out[i].Renditions = nil
		}
		return out
	}())
	for _, up := range repo.got {
		require.Equal(t, []string{"preview", "thumb"}, up.Renditions)
		require.Equal(t, "originals/"+up.UUID+"/"+up.Filename, up.Key)
	}
	require.NotEqual(t, a.UUID, same.UUID)
	require.Equal(t, "holiday_photo.png", a.Filename)
	require.Equal(t, "image/jpeg", a.ContentType, "detected from the bytes, not the name")
	require.Equal(t, int64(len(jpg)), a.Bytes)
	require.Equal(t, int64(len(jpg)), same.Bytes)
	require.Equal(t, "report.pdf", doc.Filename)
	require.Equal(t, "application/pdf", doc.ContentType)

	stored, err := os.ReadFile(filepath.Join(dir, same.Key))
	require.NoError(t, err)
	require.Equal(t, jpg, stored)
	require.Len(t, files(t, dir), 3)

	b.Abort(ctx) // after a commit: nothing happens
	require.Len(t, files(t, dir), 3)
}

func TestUploadBatchDefaultsToThumb(t *testing.T) {
	t.Parallel()
	u, repo, _ := newUploads(t, 10)
	b := u.Begin()
	_, err := b.Add(context.Background(), "a.jpg", bytes.NewReader(jpegHead))
	require.NoError(t, err)
	_, err = b.Commit(context.Background(), app.UploadOptions{}, "")
	require.NoError(t, err)
	require.Equal(t, []string{rendition.Default}, repo.got[0].Renditions)
}

func TestUploadBatchRefusals(t *testing.T) {
	t.Parallel()
	errBody := errors.New("body broke off")
	cases := []struct {
		name       string
		files      map[string]io.Reader
		renditions []string
		repoErr    error
		check      func(t *testing.T, err error)
	}{
		{
			name:  "text named .jpg",
			files: map[string]io.Reader{"notes.jpg": strings.NewReader("hello there, just text")},
			check: func(t *testing.T, err error) {
				var u *app.UnsupportedError
				require.ErrorAs(t, err, &u)
				require.Equal(t, "notes.jpg", u.Filename)
			},
		},
		{
			name:  "empty file",
			files: map[string]io.Reader{"empty.png": strings.NewReader("")},
			check: func(t *testing.T, err error) {
				var u *app.UnsupportedError
				require.ErrorAs(t, err, &u)
			},
		},
		{
			name:  "body error",
			files: map[string]io.Reader{"a.jpg": io.MultiReader(bytes.NewReader(jpegHead), iotest.ErrReader(errBody))},
			check: func(t *testing.T, err error) { require.ErrorIs(t, err, errBody) },
		},
		{
			name:  "too many files",
			files: map[string]io.Reader{"a.jpg": bytes.NewReader(jpegHead), "b.jpg": bytes.NewReader(jpegHead), "c.jpg": bytes.NewReader(jpegHead)},
			check: func(t *testing.T, err error) {
				var inv *app.InvalidError
				require.ErrorAs(t, err, &inv)
				require.Equal(t, "too_many_files", inv.Code)
			},
		},
		{
			name: "unknown rendition", files: map[string]io.Reader{"a.jpg": bytes.NewReader(jpegHead)}, renditions: []string{"poster"},
			check: func(t *testing.T, err error) {
				var inv *app.InvalidError
				require.ErrorAs(t, err, &inv)
				require.Equal(t, "unknown_rendition", inv.Code)
			},
		},
		{
			name: "no files",
			check: func(t *testing.T, err error) {
				var inv *app.InvalidError
				require.ErrorAs(t, err, &inv)
				require.Equal(t, "no_files", inv.Code)
			},
		},
		{
			name: "database down", files: map[string]io.Reader{"a.jpg": bytes.NewReader(jpegHead)}, repoErr: errBody,
			check: func(t *testing.T, err error) { require.ErrorIs(t, err, errBody) },
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u, repo, dir := newUploads(t, 2)
			repo.err = tc.repoErr
			ctx := context.Background()
			b := u.Begin()
			var err error
			if len(tc.files) > 0 {
				// A good file first: it must be removed when the request fails.
				_, err = b.Add(ctx, "first.jpg", bytes.NewReader(jpegHead))
				require.NoError(t, err)
			}
			for name, r := range tc.files {
				if _, err = b.Add(ctx, name, r); err != nil {
					break
				}
			}
			if err == nil {
				_, err = b.Commit(ctx, app.UploadOptions{Renditions: tc.renditions}, "")
			} else {
				b.Abort(ctx)
			}
			require.Error(t, err)
			tc.check(t, err)
			require.Empty(t, files(t, dir), "nothing stays stored")
			require.Empty(t, repo.got)
		})
	}
}

func TestUploadBatchCallbackURL(t *testing.T) {
	t.Parallel()
	u, repo, dir := newUploads(t, 10)
	ctx := context.Background()

	b := u.Begin()
	_, err := b.Add(ctx, "a.jpg", bytes.NewReader(jpegHead))
	require.NoError(t, err)
	_, err = b.Add(ctx, "b.jpg", bytes.NewReader(jpegHead))
	require.NoError(t, err)
	_, err = b.Commit(ctx, app.UploadOptions{CallbackURL: "https://hooks.example.com/photopipe"}, "")
	require.NoError(t, err)
	require.Len(t, repo.got, 2)
	for _, up := range repo.got {
		require.Equal(t, "https://hooks.example.com/photopipe", up.CallbackURL)
	}

	for _, bad := range []string{"ftp://hooks.example.com/x", "/relative", "http://", "https://hooks.example.com/" + strings.Repeat("a", 2048)} {
		b := u.Begin()
		_, err := b.Add(ctx, "c.jpg", bytes.NewReader(jpegHead))
		require.NoError(t, err)
		_, err = b.Commit(ctx, app.UploadOptions{CallbackURL: bad}, "")
		var invalid *app.InvalidError
		require.ErrorAs(t, err, &invalid, bad)
		require.Equal(t, "invalid_callback_url", invalid.Code)
	}
	require.Len(t, files(t, dir), 2, "the refused batches' files are deleted")
}
