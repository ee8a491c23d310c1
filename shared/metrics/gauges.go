package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// gauges is a collector of one gauge per value of one label, read by a
// function when scraped, at most once per ttl: scrapes from several
// Prometheus servers cost one read.
type gauges struct {
	desc    *prometheus.Desc
	read    func(ctx context.Context) (map[string]float64, error)
	ttl     time.Duration
	timeout time.Duration

	mu   sync.Mutex
	at   time.Time
	vals map[string]float64
	ok   bool
}

func (g *gauges) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

// Collect reports the cached values, reading them first when older than
// ttl. A failed read reports nothing: a gap, rather than a stale value.
func (g *gauges) Collect(ch chan<- prometheus.Metric) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if time.Since(g.at) >= g.ttl {
		// Collect has no context of its own; the timeout bounds the read.
		ctx, cancel := context.WithTimeout(context.Background(), g.timeout)
		vals, err := g.read(ctx)
		cancel()
		g.at, g.vals, g.ok = time.Now(), vals, err == nil
	}
	if !g.ok {
		return
	}
	for label, v := range g.vals {
		ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, v, label)
	}
}

// readTimeout bounds one read of a collector's values.
const readTimeout = 2 * time.Second

// PhotoCounter counts photos by status.
type PhotoCounter func(ctx context.Context) (map[string]int, error)

// NewPhotoStatuses registers photopipe_photos{service,status}: the number of
// photos in each status, read by count at most once per ttl. Every one of
// statuses is reported, 0 when count does not name it.
func NewPhotoStatuses(r *Registry, statuses []string, count PhotoCounter, ttl time.Duration) error {
	return r.register(&gauges{
		desc: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", "photos"),
			"Photos by status (pending, processing, completed, failed), counted at most once per "+ttl.String()+".",
			[]string{"status"}, nil),
		read: func(ctx context.Context) (map[string]float64, error) {
			n, err := count(ctx)
			if err != nil {
				return nil, err
			}
			out := make(map[string]float64, len(n)+len(statuses))
			for _, s := range statuses {
				out[s] = 0
			}
			for k, v := range n {
				out[k] = float64(v)
			}
			return out, nil
		},
		ttl: ttl, timeout: readTimeout,
	})
}

// QueueCounter counts the messages waiting in a queue.
type QueueCounter func(ctx context.Context, queue string) (int, error)

// NewDeadLetterDepth registers photopipe_dead_letter_messages{service,queue}:
// the messages waiting in the service's dead-letter queue, counted at most
// once per ttl.
func NewDeadLetterDepth(r *Registry, queue string, count QueueCounter, ttl time.Duration) error {
	return r.register(&gauges{
		desc: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", "dead_letter_messages"),
			"Messages waiting in the service's dead-letter queue, counted at most once per "+ttl.String()+".",
			[]string{"queue"}, nil),
		read: func(ctx context.Context) (map[string]float64, error) {
			n, err := count(ctx, queue)
			if err != nil {
				return nil, err
			}
			return map[string]float64{queue: float64(n)}, nil
		},
		ttl: ttl, timeout: readTimeout,
	})
}
