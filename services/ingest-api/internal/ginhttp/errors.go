package ginhttp

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/photopipe/photopipe/services/ingest-api/internal/app"
)

// errorBody is every error response: a stable code and a message for people.
type errorBody struct {
	Code  string `json:"code"`
	Error string `json:"error"`
}

// respondError maps an error to its status: the public message goes to the
// client, the whole chain to the log.
func (h *Handler) respondError(c *gin.Context, err error) {
	respondError(c, h.log, err)
}

func respondError(c *gin.Context, log *slog.Logger, err error) {
	var inv *app.InvalidError
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &inv):
		c.JSON(http.StatusBadRequest, errorBody{Code: inv.Code, Error: inv.Message})
	case errors.As(err, &tooBig):
		c.JSON(http.StatusRequestEntityTooLarge, errorBody{Code: "too_large", Error: "the request body is larger than the limit"})
	case errors.Is(err, app.ErrNotFound):
		c.JSON(http.StatusNotFound, errorBody{Code: "not_found", Error: err.Error()})
	default:
		log.ErrorContext(c.Request.Context(), "request failed", slog.String("error", err.Error()),
			slog.String("path", c.FullPath()))
		c.JSON(http.StatusServiceUnavailable, errorBody{Code: "unavailable", Error: "the service cannot handle the request now; try again"})
	}
}

func badRequest(c *gin.Context, code, msg string) {
	c.JSON(http.StatusBadRequest, errorBody{Code: code, Error: msg})
}
