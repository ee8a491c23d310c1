// Package ginhttp is ingest-api's HTTP interface (gin): it binds requests,
// calls the use cases and maps their errors to JSON responses.
package ginhttp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/photopipe/photopipe/services/ingest-api/internal/app"
	"github.com/photopipe/photopipe/shared/bus"
	"github.com/photopipe/photopipe/shared/logging"
)

// Handler serves the API.
type Handler struct {
	svc          *app.Service
	log          *slog.Logger
	maxBodyBytes int64
	// Uploads (upload.go): nil serves no upload routes.
	uploads        *app.Uploads
	maxUploadBytes int64
	// API keys and rate limits (auth.go, ratelimit.go): nil lets every
	// request in.
	auth    *Auth
	limiter *RateLimiter
}

// NewHandler returns a Handler over svc.
func NewHandler(svc *app.Service, log *slog.Logger, maxBodyBytes int64) *Handler {
	return &Handler{svc: svc, log: log, maxBodyBytes: maxBodyBytes}
}

// CorrelationHeader carries a request's correlation id in and out.
const CorrelationHeader = "X-Correlation-ID"

// Routes registers every route on r; extra handlers (health) are passed in.
func (h *Handler) Routes(r *gin.Engine, healthz, readyz gin.HandlerFunc) {
	// Without it gin never calls NoMethod and answers 404 instead of 405.
	r.HandleMethodNotAllowed = true
	r.Use(h.correlate, h.accessLog, h.authenticate, h.rateLimit)
	r.GET("/healthz", healthz)
	r.GET("/readyz", readyz)
	r.POST("/photos", h.createPhotos)
	r.GET("/photos/pending", h.listPending)
	r.POST("/photos/process", h.processPhotos)
	r.GET("/photos/:uuid", h.getPhoto)
	r.GET("/files/*key", h.serveFile)
	r.HEAD("/files/*key", h.serveFile)
	h.uploadRoutes(r)
	r.NoRoute(func(c *gin.Context) {
		c.JSON(http.StatusNotFound, errorBody{Code: "no_route", Error: fmt.Sprintf("no route %s %s", c.Request.Method, c.Request.URL.Path)})
	})
	r.NoMethod(func(c *gin.Context) {
		c.JSON(http.StatusMethodNotAllowed, errorBody{Code: "method_not_allowed", Error: fmt.Sprintf("%s is not allowed on %s", c.Request.Method, c.Request.URL.Path)})
	})
}

func (h *Handler) correlate(c *gin.Context) {
	id := c.GetHeader(CorrelationHeader)
	if id == "" || len(id) > 128 {
		id = uuid.NewString()
	}
	c.Header(CorrelationHeader, id)
	ctx := bus.WithCorrelationID(c.Request.Context(), id)
	c.Request = c.Request.WithContext(logging.With(ctx, slog.String("correlation_id", id)))
	c.Next()
}

func (h *Handler) accessLog(c *gin.Context) {
	start := time.Now()
	c.Next()
	h.log.DebugContext(c.Request.Context(), "http request",
		slog.String("method", c.Request.Method), slog.String("route", c.FullPath()),
		slog.Int("status", c.Writer.Status()), slog.Duration("duration", time.Since(start)))
}

// readJSON reads a bounded body and reports whether it is a bare array.
func (h *Handler) readJSON(c *gin.Context) ([]byte, bool, error) {
	return readJSON(c, h.maxBodyBytes)
}

func readJSON(c *gin.Context, limit int64) ([]byte, bool, error) {
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, false, err
		}
		return nil, false, &app.InvalidError{Code: "invalid_body", Message: "could not read the request body"}
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, false, &app.InvalidError{Code: "invalid_json", Message: "the request body is empty; send JSON"}
	}
	return trimmed, trimmed[0] == '[', nil
}

func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			field := typeErr.Field
			if field == "" {
				field = "the body"
			}
			return &app.InvalidError{Code: "invalid_json", Message: fmt.Sprintf("%s: %s where %s is expected", field, jsonValue(typeErr.Value), jsonKind(typeErr.Type))}
		}
		return &app.InvalidError{Code: "invalid_json", Message: "malformed JSON: " + err.Error()}
	}
	if dec.More() {
		return &app.InvalidError{Code: "invalid_json", Message: "malformed JSON: data after the first value"}
	}
	return nil
}

// jsonKind names what JSON value a Go type takes, for a client.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.String {
			return "an array of strings"
		}
		return "an array"
	default:
		return "an object"
	}
}

// jsonValue names a JSON value as json.UnmarshalTypeError gives it.
func jsonValue(v string) string {
	switch v {
	case "bool":
		return "true or false"
	case "array", "object":
		return "an " + v
	case "string", "number":
		return "a " + v
	}
	return v // "number 1.5"
}

// renameURLField rewrites the "urls[i]: " an invalid-URL error of the
// service starts with into the name the request gave that URL.
func renameURLField(err error, name func(i int) string) error {
	var inv *app.InvalidError
	if !errors.As(err, &inv) {
		return err
	}
	var i int
	var rest string
	if n, _ := fmt.Sscanf(inv.Message, "urls[%d]:", &i); n != 1 {
		return err
	}
	_, rest, _ = strings.Cut(inv.Message, ":")
	return &app.InvalidError{Code: inv.Code, Message: name(i) + ":" + rest}
}

type createRequest struct {
	URL         string   `json:"url"`
	URLs        []string `json:"urls"`
	Process     bool     `json:"process"`
	Renditions  []string `json:"renditions"`
	CallbackURL string   `json:"callback_url"`
}

// createPhotos registers photos by URL: a bare array of URLs, {"url": ...}
// or {"urls": [...]}, with optional "process", "renditions" and
// "callback_url" (called when each photo's processing ends).
func (h *Handler) createPhotos(c *gin.Context) {
	body, bare, err := h.readJSON(c)
	if err != nil {
		h.respondError(c, err)
		return
	}
	var req createRequest
	if bare {
		err = decodeStrict(body, &req.URLs)
	} else {
		err = decodeStrict(body, &req)
	}
	if err != nil {
		h.respondError(c, err)
		return
	}
	if req.URL != "" {
		req.URLs = append([]string{req.URL}, req.URLs...)
	}
	if q := c.Query("process"); q != "" {
		req.Process, err = strconv.ParseBool(q)
		if err != nil {
			badRequest(c, "invalid_query", "process must be true or false")
			return
		}
	}
	photos, err := h.svc.RegisterPhotos(c.Request.Context(), app.Registration{
		URLs: req.URLs, Renditions: req.Renditions, Process: req.Process, CallbackURL: req.CallbackURL,
	}, bus.CorrelationID(c.Request.Context()))
	if err != nil {
		if req.URL != "" { // urls[0] is the request's "url", urls[i] its "urls"[i-1]
			err = renameURLField(err, func(i int) string {
				if i == 0 {
					return "url"
				}
				return fmt.Sprintf("urls[%d]", i-1)
			})
		}
		h.respondError(c, err)
		return
	}
	out := make([]photoJSON, len(photos))
	for i, p := range photos {
		out[i] = toJSON(p)
	}
	c.JSON(http.StatusCreated, gin.H{"photos": out})
}

type processRequest struct {
	UUIDs      []string `json:"uuids"`
	Payload    []string `json:"payload"`
	Renditions []string `json:"renditions"`
	Reprocess  bool     `json:"reprocess"`
}

// processPhotos requests processing: a bare array of uuids, {"uuids": [...]}
// or {"payload": [...]}, with optional "renditions" and "reprocess".
func (h *Handler) processPhotos(c *gin.Context) {
	body, bare, err := h.readJSON(c)
	if err != nil {
		h.respondError(c, err)
		return
	}
	var req processRequest
	if bare {
		err = decodeStrict(body, &req.UUIDs)
	} else {
		err = decodeStrict(body, &req)
	}
	if err != nil {
		h.respondError(c, err)
		return
	}
	ids := append(req.UUIDs, req.Payload...)
	results, err := h.svc.Process(c.Request.Context(), ids,
		app.ProcessOptions{Renditions: req.Renditions, Reprocess: req.Reprocess}, bus.CorrelationID(c.Request.Context()))
	if err != nil {
		h.respondError(c, err)
		return
	}
	out := make([]processResultJSON, len(results))
	counts := map[string]int{}
	for i, r := range results {
		out[i] = processResultJSON{UUID: r.UUID, Outcome: r.Outcome, Attempt: r.Attempt}
		counts[r.Outcome]++
	}
	c.JSON(http.StatusAccepted, gin.H{"results": out, "counts": counts})
}

// listPending returns pending photos as a JSON array, oldest first; when a
// page is full, X-Next-Cursor holds the value for ?after= of the next page.
func (h *Handler) listPending(c *gin.Context) {
	limit := 0
	if q := c.Query("limit"); q != "" {
		n, err := strconv.Atoi(q)
		if err != nil {
			badRequest(c, "invalid_limit", "limit must be a whole number")
			return
		}
		limit = n
		if limit == 0 {
			badRequest(c, "invalid_limit", "limit must be positive")
			return
		}
	}
	photos, next, err := h.svc.Pending(c.Request.Context(), c.Query("after"), limit)
	if err != nil {
		h.respondError(c, err)
		return
	}
	out := make([]photoJSON, len(photos))
	for i, p := range photos {
		out[i] = toJSON(p)
	}
	if next != "" {
		c.Header("X-Next-Cursor", next)
	}
	c.JSON(http.StatusOK, out)
}

func (h *Handler) getPhoto(c *gin.Context) {
	p, err := h.svc.Get(c.Request.Context(), c.Param("uuid"))
	if err != nil {
		h.respondError(c, err)
		return
	}
	c.JSON(http.StatusOK, toJSON(p))
}

// serveFile serves a stored file with its content type, an ETag and range
// support; keys cannot leave the storage root.
func (h *Handler) serveFile(c *gin.Context) {
	key := c.Param("key")
	if len(key) > 0 && key[0] == '/' {
		key = key[1:]
	}
	obj, err := h.svc.OpenFile(c.Request.Context(), key)
	if err != nil {
		h.respondError(c, err)
		return
	}
	defer obj.Close()
	info := obj.Info()
	c.Header("ETag", fmt.Sprintf(`"%x-%x"`, info.Size, info.ModTime.UnixNano()))
	c.Header("Cache-Control", "public, max-age=3600")
	c.Header("X-Content-Type-Options", "nosniff")
	http.ServeContent(c.Writer, c.Request, info.Key, info.ModTime, obj)
}
