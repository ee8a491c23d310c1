package ginhttp

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/photopipe/photopipe/services/ingest-api/internal/app"
	"github.com/photopipe/photopipe/shared/bus"
)

// JobsHandler serves batch jobs: the native API and the Retail Pulse one.
type JobsHandler struct {
	jobs         *app.Jobs
	log          *slog.Logger
	maxBodyBytes int64
}

// NewJobsHandler returns a JobsHandler.
func NewJobsHandler(jobs *app.Jobs, log *slog.Logger, maxBodyBytes int64) *JobsHandler {
	return &JobsHandler{jobs: jobs, log: log, maxBodyBytes: maxBodyBytes}
}

// Routes registers the job routes on r.
func (h *JobsHandler) Routes(r gin.IRouter) {
	r.POST("/jobs", h.create)
	r.GET("/jobs/:id", h.get)
	r.POST("/api/submit", h.retailSubmit)
	r.POST("/api/submit/", h.retailSubmit)
	r.GET("/api/status", h.retailStatus)
}

type jobRequest struct {
	Groups []struct {
		Key       string   `json:"key"`
		URLs      []string `json:"urls"`
		VisitTime string   `json:"visit_time"`
	} `json:"groups"`
	Renditions  []string `json:"renditions"`
	CallbackURL string   `json:"callback_url"`
}

// create takes {"groups": [{"key": "S1", "urls": [...]}], "renditions",
// "callback_url"} and answers 202 {"job_id"} at once.
func (h *JobsHandler) create(c *gin.Context) {
	body, _, err := readJSON(c, h.maxBodyBytes)
	var req jobRequest
	if err == nil {
		err = decodeStrict(body, &req)
	}
	if err != nil {
		respondError(c, h.log, err)
		return
	}
	job := app.NewJob{Kind: "native", Renditions: req.Renditions, CallbackURL: req.CallbackURL}
	for _, g := range req.Groups {
		job.Groups = append(job.Groups, app.GroupInput{Key: g.Key, URLs: g.URLs, VisitTime: g.VisitTime})
	}
	id, err := h.jobs.Submit(c.Request.Context(), job, bus.CorrelationID(c.Request.Context()))
	if err != nil {
		respondError(c, h.log, err)
		return
	}
	c.JSON(http.StatusAccepted, gin.H{"job_id": id, "status_url": "/jobs/" + id})
}

type jobJSON struct {
	JobID        string            `json:"job_id"`
	Status       string            `json:"status"`
	CreatedAt    time.Time         `json:"created_at"`
	CompletedAt  *time.Time        `json:"completed_at,omitempty"`
	Total        int               `json:"total"`
	Counts       map[string]int    `json:"counts"`
	Groups       map[string]int    `json:"groups"`
	FailedGroups []failedGroupJSON `json:"failed_groups"`
	Results      []jobResultJSON   `json:"results"`
	Offset       int               `json:"offset"`
	Limit        int               `json:"limit"`
	Callback     *callbackJSON     `json:"callback,omitempty"`
}

type failedGroupJSON struct {
	Key     string `json:"key"`
	Error   string `json:"error"`
	PhotoID string `json:"photo_id,omitempty"`
}

type jobResultJSON struct {
	PhotoID        string `json:"photo_id"`
	Group          string `json:"group"`
	URL            string `json:"url"`
	Status         string `json:"status"`
	Width          int    `json:"width,omitempty"`
	Height         int    `json:"height,omitempty"`
	Perimeter      int    `json:"perimeter,omitempty"`
	Thumbnail      string `json:"thumbnail,omitempty"`
	ThumbnailURL   string `json:"thumbnail_url,omitempty"`
	FailureCode    string `json:"failure_code,omitempty"`
	FailureMessage string `json:"failure_message,omitempty"`
}

// get returns the job's status, counts, failed groups and a page of
// results (?offset=, ?limit=).
func (h *JobsHandler) get(c *gin.Context) {
	offset, err1 := strconv.Atoi(c.DefaultQuery("offset", "0"))
	limit, err2 := strconv.Atoi(c.DefaultQuery("limit", "0"))
	if err1 != nil || err2 != nil {
		badRequest(c, "invalid_page", "offset and limit must be whole numbers")
		return
	}
	j, err := h.jobs.Get(c.Request.Context(), c.Param("id"), offset, limit)
	if err != nil {
		respondError(c, h.log, err)
		return
	}
	if limit == 0 {
		limit = len(j.Results)
	}
	out := jobJSON{
		JobID: j.ID, Status: j.Status, CreatedAt: j.CreatedAt, CompletedAt: j.CompletedAt, Total: j.Total,
		Counts: map[string]int{
			"completed": j.Completed, "failed": j.Failed, "skipped": j.Skipped,
			"in_progress": j.Total - j.Completed - j.Failed - j.Skipped,
		},
		Groups:       map[string]int{"total": j.GroupsTotal, "finished": j.GroupsDone, "failed": len(j.FailedGroups)},
		FailedGroups: []failedGroupJSON{}, Results: []jobResultJSON{}, Offset: offset, Limit: limit,
		Callback: toCallbackJSON(j.Callback),
	}
	for _, g := range j.FailedGroups {
		out.FailedGroups = append(out.FailedGroups, failedGroupJSON{Key: g.Key, Error: g.Error, PhotoID: g.PhotoID})
	}
	for _, r := range j.Results {
		res := jobResultJSON{
			PhotoID: r.PhotoID, Group: r.Group, URL: r.URL, Status: r.Status, Width: r.Width, Height: r.Height,
			FailureCode: r.FailureCode, FailureMessage: r.FailureMessage,
		}
		if r.Status == "completed" {
			res.Perimeter = 2 * (r.Width + r.Height)
			res.Thumbnail, res.ThumbnailURL = r.ThumbnailKey, fileURL(r.ThumbnailKey)
		}
		out.Results = append(out.Results, res)
	}
	c.JSON(http.StatusOK, out)
}

// retailError answers in the Retail Pulse shape: {"error": "..."}.
func retailError(c *gin.Context, code int, msg string) {
	c.JSON(code, gin.H{"error": msg})
}

type retailVisit struct {
	StoreID   *string   `json:"store_id"`
	ImageURL  *[]string `json:"image_url"`
	VisitTime *string   `json:"visit_time"`
}

type retailRequest struct {
	Count  *int           `json:"count"`
	Visits *[]retailVisit `json:"visits"`
	// CallbackURL is photopipe's addition to the Retail Pulse shape:
	// optional, called when the job ends.
	CallbackURL string `json:"callback_url"`
}

// retailSubmit is Retail Pulse's POST /api/submit/: 201 {"job_id"} or
// 400 {"error"}. Visits to the same store form one group, in order.
func (h *JobsHandler) retailSubmit(c *gin.Context) {
	body, _, err := readJSON(c, h.maxBodyBytes)
	var req retailRequest
	if err == nil {
		err = decodeStrict(body, &req)
	}
	var inv *app.InvalidError
	switch {
	case errors.As(err, &inv):
		retailError(c, http.StatusBadRequest, inv.Message)
		return
	case err != nil:
		respondError(c, h.log, err)
		return
	case req.Count == nil:
		retailError(c, http.StatusBadRequest, "count is missing")
		return
	case req.Visits == nil:
		retailError(c, http.StatusBadRequest, "visits is missing")
		return
	case *req.Count != len(*req.Visits):
		retailError(c, http.StatusBadRequest, "count ("+strconv.Itoa(*req.Count)+") does not match the number of visits ("+strconv.Itoa(len(*req.Visits))+")")
		return
	case len(*req.Visits) == 0:
		retailError(c, http.StatusBadRequest, "visits is empty")
		return
	}
	job := app.NewJob{Kind: "retailpulse", CallbackURL: req.CallbackURL}
	index := map[string]int{}
	for i, v := range *req.Visits {
		switch {
		case v.StoreID == nil || *v.StoreID == "":
			retailError(c, http.StatusBadRequest, "visits["+strconv.Itoa(i)+"]: store_id is missing")
			return
		case v.ImageURL == nil:
			retailError(c, http.StatusBadRequest, "visits["+strconv.Itoa(i)+"]: image_url is missing")
			return
		case len(*v.ImageURL) == 0:
			retailError(c, http.StatusBadRequest, "visits["+strconv.Itoa(i)+"]: image_url is empty")
			return
		case v.VisitTime == nil:
			retailError(c, http.StatusBadRequest, "visits["+strconv.Itoa(i)+"]: visit_time is missing")
			return
		}
		if k, ok := index[*v.StoreID]; ok {
			job.Groups[k].URLs = append(job.Groups[k].URLs, *v.ImageURL...)
			continue
		}
		index[*v.StoreID] = len(job.Groups)
		job.Groups = append(job.Groups, app.GroupInput{Key: *v.StoreID, URLs: append([]string(nil), *v.ImageURL...), VisitTime: *v.VisitTime})
	}
	id, err := h.jobs.Submit(c.Request.Context(), job, bus.CorrelationID(c.Request.Context()))
	if errors.As(err, &inv) {
		retailError(c, http.StatusBadRequest, inv.Message)
		return
	}
	if err != nil {
		respondError(c, h.log, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"job_id": id})
}

// retailStatus is Retail Pulse's GET /api/status?jobid=...
func (h *JobsHandler) retailStatus(c *gin.Context) {
	id := c.Query("jobid")
	if id == "" {
		retailError(c, http.StatusBadRequest, "jobid is missing")
		return
	}
	j, err := h.jobs.Get(c.Request.Context(), id, 0, 1)
	var inv *app.InvalidError
	switch {
	case errors.As(err, &inv), errors.Is(err, app.ErrNotFound):
		retailError(c, http.StatusBadRequest, "no job with id "+strconv.Quote(id))
		return
	case err != nil:
		respondError(c, h.log, err)
		return
	}
	if j.Status != "failed" {
		c.JSON(http.StatusOK, gin.H{"status": j.Status, "job_id": j.ID})
		return
	}
	errs := make([]gin.H, 0, len(j.FailedGroups))
	for _, g := range j.FailedGroups {
		errs = append(errs, gin.H{"store_id": g.Key, "error": g.Error})
	}
	c.JSON(http.StatusOK, gin.H{"status": "failed", "job_id": j.ID, "error": errs})
}
