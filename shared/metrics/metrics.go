// Package metrics holds photopipe's Prometheus metrics: a registry per
// process (tests run several services in one process), the outcome of
// every handled message, the pipeline's own measures and the collectors
// that read a count when scraped.
package metrics

import (
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every photopipe metric name.
const Namespace = "photopipe"

// Registry is one service's metrics. Every photopipe metric registered
// through it carries the label service; the Go runtime and process
// metrics are registered too.
type Registry struct {
	reg *prometheus.Registry
	svc prometheus.Registerer
}

// New returns the registry of service.
func New(service string) *Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &Registry{reg: reg, svc: prometheus.WrapRegistererWith(prometheus.Labels{"service": service}, reg)}
}

// Handler serves the metrics in the Prometheus text format (/metrics). A
// collector that fails leaves its metrics out; the rest are served.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Gatherer returns the underlying registry, for tests that read values.
func (r *Registry) Gatherer() prometheus.Gatherer { return r.reg }

// register adds collectors with the service label.
func (r *Registry) register(cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := r.svc.Register(c); err != nil {
			return fmt.Errorf("register metric: %w", err)
		}
	}
	return nil
}

// Buckets of the duration histograms, in seconds.
var (
	// handlingBuckets span a fast recorder update to a slow download with
	// retries.
	handlingBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}
	// stageBuckets span decoding a thumbnail to encoding a large preview.
	stageBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
)
