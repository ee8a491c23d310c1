package app

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/google/uuid"

	"github.com/photopipe/photopipe/shared/imagetype"
	"github.com/photopipe/photopipe/shared/rendition"
	"github.com/photopipe/photopipe/shared/storage"
)

// UnsupportedError is an uploaded file that is neither an image photopipe
// reads nor a PDF, judged from its first bytes.
type UnsupportedError struct {
	Filename string
	Reason   string
}

func (e *UnsupportedError) Error() string { return e.Filename + ": " + e.Reason }

// NewUpload is an uploaded file, already stored, to register.
type NewUpload struct {
	UUID        string
	Filename    string // as the client named it, reduced to a safe base name
	Key         string
	ContentType string // detected from the bytes
	Bytes       int64
	Renditions  []string
	CallbackURL string
}

// UploadRepository registers stored uploads and requests their processing
// (PhotoRequested with the original's key) in one transaction.
type UploadRepository interface {
	CreateUploads(ctx context.Context, uploads []NewUpload, correlationID string) ([]Photo, error)
}

// Uploads is the use case of receiving files: each is stored as its own
// photo's original, then all are registered together.
type Uploads struct {
	repo     UploadRepository
	store    storage.Store
	presets  rendition.Presets
	maxFiles int
	maxURL   int
}

// NewUploads returns the upload use case; maxFiles bounds the files of one
// request, maxURLLength a callback URL.
func NewUploads(repo UploadRepository, store storage.Store, presets rendition.Presets, maxFiles, maxURLLength int) *Uploads {
	return &Uploads{repo: repo, store: store, presets: presets, maxFiles: maxFiles, maxURL: maxURLLength}
}

// UploadOptions are what a request asks of all its files.
type UploadOptions struct {
	// Renditions to make; none means the default (thumb).
	Renditions []string
	// CallbackURL, when set, receives a signed POST when each photo's
	// processing ends.
	CallbackURL string
}

// UploadBatch collects the files of one request. Files are stored as they
// arrive; Commit registers them all, Abort deletes what was stored. A batch
// is used by one goroutine.
type UploadBatch struct {
	u     *Uploads
	files []NewUpload
	done  bool
}

// Begin starts a batch.
func (u *Uploads) Begin() *UploadBatch { return &UploadBatch{u: u} }

// Add stores r as the original of a new photo under
// originals/<photo>/<safe filename>, atomically. The format is detected
// from the first bytes: anything but an image or a PDF is an
// *UnsupportedError and nothing is stored. Errors of r (a body over the
// limit) are returned wrapped.
func (b *UploadBatch) Add(ctx context.Context, filename string, r io.Reader) (NewUpload, error) {
	if len(b.files) >= b.u.maxFiles {
		return NewUpload{}, invalid("too_many_files", "more than %d files in one request", b.u.maxFiles)
	}
	name := storage.SafeFilename(filename, "upload")
	br := bufio.NewReaderSize(r, 4096)
	head, err := br.Peek(imagetype.SniffLen)
	if err != nil && !errors.Is(err, io.EOF) {
		return NewUpload{}, fmt.Errorf("read %s: %w", name, err)
	}
	if len(head) == 0 {
		return NewUpload{}, &UnsupportedError{Filename: name, Reason: "the file is empty"}
	}
	format := imagetype.Detect(head)
	if format == imagetype.Unknown {
		return NewUpload{}, &UnsupportedError{Filename: name, Reason: "not an image (JPEG, PNG, GIF, WebP, BMP, TIFF) or PDF"}
	}
	id := uuid.NewString()
	key := storage.OriginalKey(id, name)
	n, err := b.u.store.Put(ctx, key, br)
	if err != nil {
		return NewUpload{}, fmt.Errorf("store %s: %w", name, err)
	}
	up := NewUpload{UUID: id, Filename: name, Key: key, ContentType: format.ContentType(), Bytes: n}
	b.files = append(b.files, up)
	return up, nil
}

// Commit registers every stored file as a photo with the options'
// renditions (default thumb) and callback, and requests its processing. On
// error the stored files are deleted.
func (b *UploadBatch) Commit(ctx context.Context, opts UploadOptions, correlationID string) ([]Photo, error) {
	if len(b.files) == 0 {
		return nil, invalid("no_files", "no files in the request; send them as multipart/form-data file fields")
	}
	names, err := b.u.presets.Check(opts.Renditions)
	if err != nil {
		b.Abort(ctx)
		return nil, invalid("unknown_rendition", "%v", err)
	}
	if err := checkCallbackURL(opts.CallbackURL, b.u.maxURL); err != nil {
		b.Abort(ctx)
		return nil, err
	}
	for i := range b.files {
		b.files[i].Renditions = names
		b.files[i].CallbackURL = opts.CallbackURL
	}
	photos, err := b.u.repo.CreateUploads(ctx, b.files, correlationID)
	if err != nil {
		b.Abort(ctx)
		return nil, err
	}
	b.done = true
	return photos, nil
}

// Abort deletes the files stored so far, unless the batch was committed.
// It runs even when ctx has ended (the client went away).
func (b *UploadBatch) Abort(ctx context.Context) {
	if b.done {
		return
	}
	b.done = true
	ctx = context.WithoutCancel(ctx)
	for _, f := range b.files {
		_ = b.u.store.Delete(ctx, f.Key) // best effort: an orphan file is harmless
	}
}
