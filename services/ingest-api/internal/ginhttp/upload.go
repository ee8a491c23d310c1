package ginhttp

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/photopipe/photopipe/services/ingest-api/internal/app"
	"github.com/photopipe/photopipe/shared/bus"
)

// maxFieldBytes bounds a multipart field that is not a file (renditions).
const maxFieldBytes = 4 << 10

// WithUploads enables the upload routes (POST /photos/upload and the
// upload service's compatibility routes); request bodies are limited to
// maxUploadBytes (MAX_UPLOAD_BYTES).
func (h *Handler) WithUploads(u *app.Uploads, maxUploadBytes int64) *Handler {
	h.uploads = u
	h.maxUploadBytes = maxUploadBytes
	return h
}

// uploadRoutes registers the routes that take files, and the thumbnail
// service's routes, which are thin adapters like them.
func (h *Handler) uploadRoutes(r *gin.Engine) {
	if h.uploads != nil {
		r.POST("/photos/upload", h.uploadPhotos)
		r.POST("/upload", h.compatUpload)
	}
	r.GET("/upload/:id/status", h.compatUploadStatus)
	r.GET("/upload/:id/result", h.compatUploadResult)
	r.POST("/api/thumb", h.compatThumbCreate)
	r.GET("/api/thumb/:id", h.compatThumbGet)
}

// uploadedFile is a stored file of a request, with the name the client gave.
type uploadedFile struct {
	ClientName string
	Upload     app.NewUpload
}

// receiveUpload reads a multipart/form-data body: every part with a file
// name is stored as a new photo's original (when accept allows its field
// name), the other fields are returned by name. The body is limited to
// MAX_UPLOAD_BYTES: a declared Content-Length over it is refused before a
// byte is read, and a longer body is cut off while streaming. The files
// are stored but not yet registered: the caller commits or aborts batch.
func (h *Handler) receiveUpload(c *gin.Context, accept func(field string) bool) (*app.UploadBatch, []uploadedFile, map[string][]string, error) {
	if c.Request.ContentLength > h.maxUploadBytes {
		return nil, nil, nil, &http.MaxBytesError{Limit: h.maxUploadBytes}
	}
	mediaType, params, err := mime.ParseMediaType(c.GetHeader("Content-Type"))
	if err != nil || mediaType != "multipart/form-data" || params["boundary"] == "" {
		return nil, nil, nil, errNotMultipart
	}
	body := http.MaxBytesReader(c.Writer, c.Request.Body, h.maxUploadBytes)
	mr := multipart.NewReader(body, params["boundary"])
	ctx := c.Request.Context()
	batch := h.uploads.Begin()
	var files []uploadedFile
	fields := map[string][]string{}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return batch, files, fields, nil
		}
		if err != nil {
			batch.Abort(ctx)
			return nil, nil, nil, bodyError(err)
		}
		name := part.FormName()
		if part.FileName() == "" {
			v, err := io.ReadAll(io.LimitReader(part, maxFieldBytes+1))
			if err != nil {
				batch.Abort(ctx)
				return nil, nil, nil, bodyError(err)
			}
			if len(v) > maxFieldBytes {
				batch.Abort(ctx)
				return nil, nil, nil, &app.InvalidError{Code: "invalid_field", Message: fmt.Sprintf("field %q is longer than %d bytes", name, maxFieldBytes)}
			}
			fields[name] = append(fields[name], string(v))
			continue
		}
		if !accept(name) {
			batch.Abort(ctx)
			return nil, nil, nil, &app.InvalidError{Code: "unexpected_file", Message: fmt.Sprintf("file field %q is not expected here", name)}
		}
		rec := &readRecorder{r: part}
		up, err := batch.Add(ctx, part.FileName(), rec)
		if err != nil {
			batch.Abort(ctx)
			if rec.err != nil {
				return nil, nil, nil, bodyError(rec.err)
			}
			return nil, nil, nil, err // unsupported, too many files, or storage
		}
		files = append(files, uploadedFile{ClientName: part.FileName(), Upload: up})
	}
}

var errNotMultipart = errors.New("the request is not multipart/form-data")

// bodyError classifies an error reading the body: over the limit stays a
// *http.MaxBytesError (413), anything else is a malformed or broken body.
func bodyError(err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return err
	}
	return &app.InvalidError{Code: "invalid_body", Message: "could not read the multipart body: " + err.Error()}
}

// readRecorder remembers the first error of a reader other than EOF, so
// that a failed store can be told apart from a failed body.
type readRecorder struct {
	r   io.Reader
	err error
}

func (x *readRecorder) Read(p []byte) (int, error) {
	n, err := x.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && x.err == nil {
		x.err = err
	}
	return n, err
}

// splitList reads names given as repeated values and/or comma-separated.
func splitList(values ...string) []string {
	var out []string
	for _, v := range values {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

// lastValue is the last of a form field's values, else fallback.
func lastValue(values []string, fallback string) string {
	if len(values) > 0 {
		return strings.TrimSpace(values[len(values)-1])
	}
	return fallback
}

// uploadPhotos is POST /photos/upload: multipart/form-data with one or more
// files (any field name), an optional "renditions" field (repeated or
// comma-separated; also ?renditions=) and an optional "callback_url" (also
// ?callback_url=). Every file becomes a photo whose
// processing is requested at once; the answer is 202 with the photos.
func (h *Handler) uploadPhotos(c *gin.Context) {
	batch, _, fields, err := h.receiveUpload(c, func(string) bool { return true })
	if err != nil {
		h.respondUploadError(c, err)
		return
	}
	renditions := splitList(append(fields["renditions"], c.QueryArray("renditions")...)...)
	opts := app.UploadOptions{Renditions: renditions, CallbackURL: lastValue(fields["callback_url"], c.Query("callback_url"))}
	photos, err := batch.Commit(c.Request.Context(), opts, bus.CorrelationID(c.Request.Context()))
	if err != nil {
		h.respondUploadError(c, err)
		return
	}
	out := make([]photoJSON, len(photos))
	for i, p := range photos {
		out[i] = toJSON(p)
	}
	c.JSON(http.StatusAccepted, gin.H{"photos": out})
}

// respondUploadError adds the upload errors (413 with the limit, 415) to
// respondError.
func (h *Handler) respondUploadError(c *gin.Context, err error) {
	var tooBig *http.MaxBytesError
	var unsupported *app.UnsupportedError
	switch {
	case errors.As(err, &tooBig):
		c.JSON(http.StatusRequestEntityTooLarge, errorBody{Code: "too_large",
			Error: fmt.Sprintf("the request body is larger than the limit of %d bytes (MAX_UPLOAD_BYTES)", h.maxUploadBytes)})
	case errors.As(err, &unsupported):
		c.JSON(http.StatusUnsupportedMediaType, errorBody{Code: "unsupported_format", Error: unsupported.Error()})
	case errors.Is(err, errNotMultipart):
		c.JSON(http.StatusUnsupportedMediaType, errorBody{Code: "unsupported_media_type",
			Error: "send the files as multipart/form-data"})
	default:
		h.respondError(c, err)
	}
}
