package ginhttp

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/photopipe/photopipe/services/ingest-api/internal/app"
	"github.com/photopipe/photopipe/shared/bus"
)

// The upload service (FastAPI + Celery + MinIO) compatibility routes:
// POST /upload, GET /upload/{id}/status, GET /upload/{id}/result. Its
// results were a resized-and-compressed image and a thumbnail: here the
// renditions "resized" (fit in 800x600, JPEG q85) and "small" (fit in
// 128x128). Errors have that service's (FastAPI's) shape: {"detail": ...}.

// Renditions the upload service made.
const (
	compatResized   = "resized"
	compatThumbnail = "small"
)

// Celery task states the upload service reported.
const (
	celeryPending  = "PENDING"
	celeryProgress = "PROGRESS"
	celerySuccess  = "SUCCESS"
	celeryFailure  = "FAILURE"
)

type compatUploadResponse struct {
	ID        string `json:"id"`
	TaskID    string `json:"task_id"`
	Filename  string `json:"filename"`
	StatusURL string `json:"status_url"`
	ResultURL string `json:"result_url"`
	Message   string `json:"message"`
}

// compatResultJSON holds the files' URLs; a rendition the photo does not
// have (it was made by another route) is null.
type compatResultJSON struct {
	ResizedCompressed *string `json:"resized_compressed"`
	Thumbnail         *string `json:"thumbnail"`
}

type compatStatusResponse struct {
	TaskID string            `json:"task_id"`
	Status string            `json:"status"`
	Detail string            `json:"detail"`
	Result *compatResultJSON `json:"result"`
}

type detailBody struct {
	Detail string `json:"detail"`
}

// compatUpload is POST /upload: one file in the multipart field "file".
func (h *Handler) compatUpload(c *gin.Context) {
	batch, files, _, err := h.receiveUpload(c, func(field string) bool { return field == "file" })
	if err != nil {
		h.respondDetail(c, err)
		return
	}
	if len(files) != 1 {
		batch.Abort(c.Request.Context())
		c.JSON(http.StatusUnprocessableEntity, detailBody{Detail: "send exactly one file in the multipart field \"file\""})
		return
	}
	photos, err := batch.Commit(c.Request.Context(), app.UploadOptions{Renditions: []string{compatResized, compatThumbnail}}, bus.CorrelationID(c.Request.Context()))
	if err != nil {
		h.respondDetail(c, err)
		return
	}
	id := photos[0].UUID
	c.JSON(http.StatusOK, compatUploadResponse{
		ID: id, TaskID: id, Filename: files[0].ClientName,
		StatusURL: "/upload/" + id + "/status", ResultURL: "/upload/" + id + "/result",
		Message: "File uploaded successfully. Processing started in the background.",
	})
}

// compatUploadStatus is GET /upload/{id}/status; FAILURE answers 500, as
// the upload service did.
func (h *Handler) compatUploadStatus(c *gin.Context) {
	p, ok := h.compatPhoto(c, "Task not found")
	if !ok {
		return
	}
	out := compatStatusResponse{TaskID: p.UUID}
	status := http.StatusOK
	switch p.Status {
	case "completed":
		out.Status, out.Detail, out.Result = celerySuccess, "Processing finished.", compatResult(p)
	case "failed":
		out.Status, out.Detail, status = celeryFailure, failureDetail(p), http.StatusInternalServerError
	case "processing":
		out.Status, out.Detail = celeryProgress, "Processing."
	default:
		out.Status, out.Detail = celeryPending, "Waiting to be processed."
	}
	c.JSON(status, out)
}

// compatUploadResult is GET /upload/{id}/result: 200 with the files once
// done, 404 while not, 500 when processing failed.
func (h *Handler) compatUploadResult(c *gin.Context) {
	p, ok := h.compatPhoto(c, "Task not found")
	if !ok {
		return
	}
	switch p.Status {
	case "completed":
		c.JSON(http.StatusOK, gin.H{"status": celerySuccess, "result": compatResult(p)})
	case "failed":
		c.JSON(http.StatusInternalServerError, detailBody{Detail: failureDetail(p)})
	default:
		c.JSON(http.StatusNotFound, detailBody{Detail: "Result not ready yet; the task is " + p.Status + "."})
	}
}

// compatPhoto reads the photo named by the id parameter; an unknown or
// malformed id answers 404 with notFound.
func (h *Handler) compatPhoto(c *gin.Context, notFound string) (app.Photo, bool) {
	p, err := h.svc.Get(c.Request.Context(), c.Param("id"))
	var inv *app.InvalidError
	if errors.Is(err, app.ErrNotFound) || errors.As(err, &inv) {
		c.JSON(http.StatusNotFound, detailBody{Detail: notFound})
		return app.Photo{}, false
	}
	if err != nil {
		h.respondDetail(c, err)
		return app.Photo{}, false
	}
	return p, true
}

func compatResult(p app.Photo) *compatResultJSON {
	out := &compatResultJSON{}
	if t, ok := firstRendition(p, compatResized); ok {
		u := fileURL(t.Key)
		out.ResizedCompressed = &u
	}
	if t, ok := firstRendition(p, compatThumbnail); ok {
		u := fileURL(t.Key)
		out.Thumbnail = &u
	}
	return out
}

// firstRendition returns the rendition of a photo, of its first page for a
// PDF.
func firstRendition(p app.Photo, name string) (app.Thumbnail, bool) {
	var best app.Thumbnail
	found := false
	for _, t := range p.Thumbnails {
		if t.Rendition == name && (!found || t.Page < best.Page) {
			best, found = t, true
		}
	}
	return best, found
}

func failureDetail(p app.Photo) string {
	if p.Failure == nil {
		return "Processing failed."
	}
	return "Processing failed: " + p.Failure.Code + ": " + p.Failure.Message
}

// respondDetail maps an error like respondError, in the {"detail": ...}
// shape of the older services (FastAPI answers 422 to invalid input).
func (h *Handler) respondDetail(c *gin.Context, err error) {
	var inv *app.InvalidError
	var tooBig *http.MaxBytesError
	var unsupported *app.UnsupportedError
	switch {
	case errors.As(err, &tooBig):
		c.JSON(http.StatusRequestEntityTooLarge, detailBody{Detail: "The request body is larger than the limit."})
	case errors.As(err, &unsupported):
		c.JSON(http.StatusUnsupportedMediaType, detailBody{Detail: unsupported.Error()})
	case errors.Is(err, errNotMultipart):
		c.JSON(http.StatusUnsupportedMediaType, detailBody{Detail: "Send the file as multipart/form-data."})
	case errors.As(err, &inv):
		c.JSON(http.StatusUnprocessableEntity, detailBody{Detail: inv.Message})
	default:
		h.log.ErrorContext(c.Request.Context(), "request failed", slog.String("error", err.Error()),
			slog.String("path", c.FullPath()))
		c.JSON(http.StatusServiceUnavailable, detailBody{Detail: "The service cannot handle the request now; try again."})
	}
}
