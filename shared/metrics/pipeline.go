package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Counter is a counter that only goes up.
type Counter interface {
	Add(float64)
}

// NewDownloadedBytes registers and returns
// photopipe_downloaded_bytes_total{service}: bytes read from photo sources.
func NewDownloadedBytes(r *Registry) (Counter, error) {
	c := prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Name: "downloaded_bytes_total",
		Help: "Bytes read from photo sources (the bodies of successful responses, as far as they were read).",
	})
	if err := r.register(c); err != nil {
		return nil, err
	}
	return c, nil
}

// Stages times the stages of rendering a photo.
type Stages struct {
	h *prometheus.HistogramVec
}

// Rendering stages.
const (
	StageDecode = "decode"
	StageResize = "resize"
	StageEncode = "encode"
)

// NewStages registers photopipe_resize_stage_seconds{service,stage} on r.
func NewStages(r *Registry) (*Stages, error) {
	s := &Stages{h: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "resize_stage_seconds",
		Help: "Time spent per stage of rendering an image (not PDF pages): decode, resize and encode, " +
			"one sample of each per image (resize and encode summed over its renditions).",
		Buckets: stageBuckets,
	}, []string{"stage"})}
	if err := r.register(s.h); err != nil {
		return nil, err
	}
	return s, nil
}

// Observe records that stage took d.
func (s *Stages) Observe(stage string, d time.Duration) {
	s.h.WithLabelValues(stage).Observe(d.Seconds())
}

// HTTP records HTTP requests.
type HTTP struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewHTTP registers on r:
//
//	photopipe_http_requests_total{service,method,route,status}
//	photopipe_http_request_duration_seconds{service,method,route}
func NewHTTP(r *Registry) (*HTTP, error) {
	h := &HTTP{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "http_requests_total",
			Help: "HTTP requests by method, route template (\"unmatched\" for no route) and status code.",
		}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "http_request_duration_seconds",
			Help:    "Time to serve an HTTP request, by method and route template.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "route"}),
	}
	if err := r.register(h.requests, h.duration); err != nil {
		return nil, err
	}
	return h, nil
}

// ObserveRequest records one request. route is the route template
// ("/photos/:uuid"), never the path, so the number of series stays bounded;
// "" (no route matched) is recorded as "unmatched", and methods outside the
// standard ones as "other".
func (h *HTTP) ObserveRequest(method, route string, status int, elapsed time.Duration) {
	switch method {
	case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS":
	default:
		method = "other"
	}
	if route == "" {
		route = "unmatched"
	}
	h.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	h.duration.WithLabelValues(method, route).Observe(elapsed.Seconds())
}
