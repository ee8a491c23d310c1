package ginhttp

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/mail"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/photopipe/photopipe/services/ingest-api/internal/app"
	"github.com/photopipe/photopipe/shared/bus"
)

// The thumbnail service (FastAPI + rq) compatibility routes:
// POST /api/thumb {"image_url", "email"} -> 201 {"req_id"}, and
// GET /api/thumb/{id} -> {"status", "image_base64"}, where image_base64 is
// a data URI of the 100x100 centre crop ("square100") once it is done.
// Statuses are rq's job states. photopipe sends no email: the address is
// checked and accepted so that old clients keep working (use the photo's
// status or a callback instead).

// compatSquare is the rendition the thumbnail service made.
const compatSquare = "square100"

// maxInlineImageBytes bounds the rendition inlined as base64; square100 is
// a few KiB, so this only guards against a preset redefined to something
// huge through RENDITIONS.
const maxInlineImageBytes = 4 << 20

type thumbRequest struct {
	ImageURL string `json:"image_url"`
	Email    string `json:"email"`
}

type thumbResponse struct {
	Status      string  `json:"status"`
	ImageBase64 *string `json:"image_base64"`
}

// compatThumbCreate is POST /api/thumb.
func (h *Handler) compatThumbCreate(c *gin.Context) {
	body, _, err := h.readJSON(c)
	if err != nil {
		h.respondDetail(c, err)
		return
	}
	var req thumbRequest
	if err := json.Unmarshal(body, &req); err != nil {
		c.JSON(http.StatusUnprocessableEntity, detailBody{Detail: "malformed JSON: " + err.Error()})
		return
	}
	if strings.TrimSpace(req.ImageURL) == "" {
		c.JSON(http.StatusUnprocessableEntity, detailBody{Detail: "image_url is required"})
		return
	}
	if req.Email != "" {
		if _, err := mail.ParseAddress(req.Email); err != nil {
			c.JSON(http.StatusUnprocessableEntity, detailBody{Detail: fmt.Sprintf("email %q is not an email address", req.Email)})
			return
		}
	}
	photos, err := h.svc.Register(c.Request.Context(), []string{req.ImageURL}, []string{compatSquare}, true, bus.CorrelationID(c.Request.Context()))
	if err != nil {
		h.respondDetail(c, renameURLField(err, func(int) string { return "image_url" }))
		return
	}
	c.JSON(http.StatusCreated, gin.H{"req_id": photos[0].UUID})
}

// compatThumbGet is GET /api/thumb/{id}.
func (h *Handler) compatThumbGet(c *gin.Context) {
	p, ok := h.compatPhoto(c, "Thumb request not found")
	if !ok {
		return
	}
	out := thumbResponse{Status: rqStatus(p.Status)}
	if t, found := firstRendition(p, compatSquare); found && p.Status == "completed" {
		uri, err := h.dataURI(c, t)
		if err != nil {
			h.respondDetail(c, err)
			return
		}
		out.ImageBase64 = &uri
	}
	c.JSON(http.StatusOK, out)
}

// rqStatus names a photo status as an rq job state.
func rqStatus(s string) string {
	switch s {
	case "completed":
		return "finished"
	case "failed":
		return "failed"
	case "processing":
		return "started"
	}
	return "queued"
}

// dataURI reads a stored rendition into a data: URI.
func (h *Handler) dataURI(c *gin.Context, t app.Thumbnail) (string, error) {
	obj, err := h.svc.OpenFile(c.Request.Context(), t.Key)
	if err != nil {
		return "", err
	}
	defer obj.Close()
	if size := obj.Info().Size; size > maxInlineImageBytes {
		return "", fmt.Errorf("rendition %s is %d bytes, over the inline limit of %d", t.Key, size, maxInlineImageBytes)
	}
	data, err := io.ReadAll(io.LimitReader(obj, maxInlineImageBytes))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", t.Key, err)
	}
	return "data:image/" + t.Format + ";base64," + base64.StdEncoding.EncodeToString(data), nil
}
