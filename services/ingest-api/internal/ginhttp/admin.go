package ginhttp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/photopipe/photopipe/shared/deadletter"
)

// DeadLetters is what the admin endpoints need of the dead-letter queues.
type DeadLetters interface {
	Summaries(ctx context.Context, sample int) ([]deadletter.Summary, error)
	List(ctx context.Context, service string, offset, limit, sample int) (deadletter.Summary, []deadletter.Entry, error)
	Replay(ctx context.Context, service string, sel deadletter.Selection) (deadletter.Result, error)
	Discard(ctx context.Context, service string, sel deadletter.Selection) (deadletter.Result, error)
}

var _ DeadLetters = (*deadletter.Admin)(nil)

// AdminHandler serves the operator's endpoints under /admin.
type AdminHandler struct {
	dl  DeadLetters
	log *slog.Logger
}

// NewAdminHandler returns an AdminHandler over the dead-letter queues.
func NewAdminHandler(dl DeadLetters, log *slog.Logger) *AdminHandler {
	return &AdminHandler{dl: dl, log: log}
}

// reasonSample bounds how many messages are read to count reasons.
const reasonSample = 1000

// Routes registers the admin endpoints on r.
func (a *AdminHandler) Routes(r gin.IRouter) {
	g := r.Group("/admin/dead-letters")
	g.GET("", a.summaries)
	g.GET("/:service", a.list)
	g.POST("/:service/replay", a.settle(true))
	g.POST("/:service/discard", a.settle(false))
}

func (a *AdminHandler) fail(c *gin.Context, err error) {
	switch {
	case errors.Is(err, deadletter.ErrUnknownService):
		c.JSON(http.StatusNotFound, errorBody{Code: "unknown_service", Error: err.Error()})
	case errors.Is(err, deadletter.ErrEmptySelection):
		c.JSON(http.StatusBadRequest, errorBody{Code: "empty_selection", Error: err.Error()})
	case errors.Is(err, deadletter.ErrDiscarding):
		a.log.ErrorContext(c.Request.Context(), "dead-letter discard failed", slog.String("error", err.Error()))
		c.JSON(http.StatusServiceUnavailable, errorBody{Code: "unavailable", Error: "the database cannot be reached now, so nothing was discarded; try again"})
	default:
		a.log.ErrorContext(c.Request.Context(), "dead-letter request failed", slog.String("error", err.Error()))
		c.JSON(http.StatusServiceUnavailable, errorBody{Code: "unavailable", Error: "the broker cannot be reached now; try again"})
	}
}

// summaries lists every service's dead-letter queue: count and reasons.
func (a *AdminHandler) summaries(c *gin.Context) {
	out, err := a.dl.Summaries(c.Request.Context(), reasonSample)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"queues": out})
}

// list shows one service's dead letters: ?offset= and ?limit= (default 50).
func (a *AdminHandler) list(c *gin.Context) {
	offset, err1 := strconv.Atoi(c.DefaultQuery("offset", "0"))
	limit, err2 := strconv.Atoi(c.DefaultQuery("limit", "50"))
	if err1 != nil || err2 != nil || offset < 0 || limit < 1 || limit > 1000 {
		badRequest(c, "invalid_page", "offset must be >= 0 and limit between 1 and 1000")
		return
	}
	sum, entries, err := a.dl.List(c.Request.Context(), c.Param("service"), offset, limit, max(reasonSample, offset+limit))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"summary": sum, "entries": entries, "offset": offset, "limit": limit})
}

type selectionRequest struct {
	All        bool     `json:"all"`
	MessageIDs []string `json:"message_ids"`
	PhotoIDs   []string `json:"photo_ids"`
}

// settle replays or discards dead letters chosen by {"all": true},
// {"message_ids": [...]} or {"photo_ids": [...]}.
func (a *AdminHandler) settle(replay bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		var req selectionRequest
		body, _, err := readJSON(c, 1<<20)
		if err == nil {
			err = decodeStrict(body, &req)
		}
		if err != nil {
			respondError(c, a.log, err)
			return
		}
		sel := deadletter.Selection{All: req.All, MessageIDs: req.MessageIDs}
		for i, id := range req.PhotoIDs {
			u, err := uuid.Parse(id)
			if err != nil {
				badRequest(c, "invalid_uuid", fmt.Sprintf("photo_ids[%d]: %q is not a UUID", i, id))
				return
			}
			sel.PhotoIDs = append(sel.PhotoIDs, u.String())
		}
		if replay {
			res, err := a.dl.Replay(c.Request.Context(), c.Param("service"), sel)
			if err != nil {
				a.fail(c, err)
				return
			}
			c.JSON(http.StatusOK, gin.H{"replayed": res.Replayed, "failed": nonNil(res.Failed)})
			return
		}
		res, err := a.dl.Discard(c.Request.Context(), c.Param("service"), sel)
		if err != nil {
			a.fail(c, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"discarded": res.Discarded})
	}
}

// nonNil is s, or an empty slice (JSON [] rather than null).
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
