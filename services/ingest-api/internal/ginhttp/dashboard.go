package ginhttp

import (
	"embed"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/photopipe/photopipe/services/ingest-api/internal/app"
)

// web holds the dashboard and the API docs page: plain HTML, CSS and
// JavaScript, no build step, nothing fetched from elsewhere.
//
//go:embed web
var web embed.FS

// DashboardHandler serves the web dashboard and the read endpoints it
// polls: counts per status, recent photos, recent jobs.
type DashboardHandler struct {
	overview *app.Overview
	log      *slog.Logger
}

// NewDashboardHandler returns a DashboardHandler over the read views.
func NewDashboardHandler(overview *app.Overview, log *slog.Logger) *DashboardHandler {
	return &DashboardHandler{overview: overview, log: log}
}

// Routes registers the read endpoints, the dashboard page and the web
// assets on r. GET / leads to the dashboard.
func (h *DashboardHandler) Routes(r gin.IRouter) {
	r.GET("/stats", h.stats)
	r.GET("/photos", h.listPhotos)
	r.GET("/jobs", h.listJobs)
	r.GET("/", func(c *gin.Context) { c.Redirect(http.StatusFound, "/dashboard") })
	r.GET("/dashboard", servePage("dashboard.html"))
	r.GET("/ui/:file", serveAsset)
}

// webRoute reports whether a route serves a page or an asset (no data):
// they load without an API key, and fetch the data with the key the
// user gives them.
func webRoute(route string) bool {
	switch route {
	case "/", "/dashboard", "/docs", "/ui/:file", "/openapi.json":
		return true
	}
	return false
}

// contentSecurity lets the pages run only their own scripts and styles and
// talk only to this server; thumbnails are shown from blob: URLs.
const contentSecurity = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"

func servePage(name string) gin.HandlerFunc {
	return func(c *gin.Context) { serveWeb(c, name) }
}

func serveAsset(c *gin.Context) {
	serveWeb(c, c.Param("file"))
}

// serveWeb answers with an embedded file of web/, or 404.
func serveWeb(c *gin.Context, name string) {
	b, err := fs.ReadFile(web, path.Join("web", path.Base(name)))
	if err != nil {
		c.JSON(http.StatusNotFound, errorBody{Code: "not_found", Error: "no such file: " + name})
		return
	}
	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	c.Header("Content-Security-Policy", contentSecurity)
	c.Header("X-Content-Type-Options", "nosniff")
	c.Header("Cache-Control", "no-cache")
	c.Data(http.StatusOK, ctype, b)
}

type countsJSON struct {
	Photos map[string]int `json:"photos"`
	Jobs   map[string]int `json:"jobs"`
	At     time.Time      `json:"at"`
}

// stats is GET /stats: photos and jobs per status.
func (h *DashboardHandler) stats(c *gin.Context) {
	counts, err := h.overview.Counts(c.Request.Context())
	if err != nil {
		respondError(c, h.log, err)
		return
	}
	c.JSON(http.StatusOK, countsJSON{Photos: counts.Photos, Jobs: counts.Jobs, At: counts.At})
}

// page reads ?before= and ?limit=.
func page(c *gin.Context) (app.Page, bool) {
	p := app.Page{Before: c.Query("before")}
	if q := c.Query("limit"); q != "" {
		n, err := strconv.Atoi(q)
		if err != nil || n == 0 {
			badRequest(c, "invalid_limit", "limit must be a positive whole number")
			return p, false
		}
		p.Limit = n
	}
	return p, true
}

// listPhotos is GET /photos: photos newest first, with their renditions,
// optionally of one ?status=; when a page is full, X-Next-Cursor holds the
// value for ?before= of the next page.
func (h *DashboardHandler) listPhotos(c *gin.Context) {
	p, ok := page(c)
	if !ok {
		return
	}
	photos, next, err := h.overview.RecentPhotos(c.Request.Context(), c.Query("status"), p)
	if err != nil {
		respondError(c, h.log, err)
		return
	}
	out := make([]photoJSON, len(photos))
	for i, ph := range photos {
		out[i] = toJSON(ph)
	}
	if next != "" {
		c.Header("X-Next-Cursor", next)
	}
	c.JSON(http.StatusOK, out)
}

type jobSummaryJSON struct {
	JobID       string         `json:"job_id"`
	Kind        string         `json:"kind"`
	Status      string         `json:"status"`
	CreatedAt   time.Time      `json:"created_at"`
	CompletedAt *time.Time     `json:"completed_at,omitempty"`
	Total       int            `json:"total"`
	Counts      map[string]int `json:"counts"`
	Groups      map[string]int `json:"groups"`
	StatusURL   string         `json:"status_url"`
}

// listJobs is GET /jobs: jobs newest first with their counters, optionally
// of one ?status= (ongoing, completed, failed); paged like GET /photos.
func (h *DashboardHandler) listJobs(c *gin.Context) {
	p, ok := page(c)
	if !ok {
		return
	}
	jobs, next, err := h.overview.RecentJobs(c.Request.Context(), c.Query("status"), p)
	if err != nil {
		respondError(c, h.log, err)
		return
	}
	out := make([]jobSummaryJSON, len(jobs))
	for i, j := range jobs {
		out[i] = jobSummaryJSON{
			JobID: j.ID, Kind: j.Kind, Status: j.Status, CreatedAt: j.CreatedAt, CompletedAt: j.CompletedAt, Total: j.Total,
			Counts: map[string]int{
				"completed": j.Completed, "failed": j.Failed, "skipped": j.Skipped,
				"in_progress": j.Total - j.Completed - j.Failed - j.Skipped,
			},
			Groups:    map[string]int{"total": j.GroupsTotal, "finished": j.GroupsDone, "failed": j.GroupsFailed},
			StatusURL: "/jobs/" + j.ID,
		}
	}
	if next != "" {
		c.Header("X-Next-Cursor", next)
	}
	c.JSON(http.StatusOK, out)
}
