package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/photopipe/photopipe/shared/bus"
)

// Messages counts handler runs by outcome and times messages; it is the
// bus's Observer (bus.WithObserver).
type Messages struct {
	handled  *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

var _ bus.Observer = (*Messages)(nil)

// NewMessages registers the message metrics on r:
//
//	photopipe_messages_handled_total{service,handler,outcome}
//	photopipe_message_handling_seconds{service,handler,outcome}
func NewMessages(r *Registry) (*Messages, error) {
	m := &Messages{
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "messages_handled_total",
			Help: "Handler runs by outcome: ok, permanent_failure (PhotoFailed published, message acknowledged), " +
				"retried (a transient error; the message is handled again), dead_lettered, requeued " +
				"(back to its queue: cancelled by a stop, or the dead-letter queue was unreachable). Every message ends in exactly one of ok, " +
				"permanent_failure, dead_lettered and requeued.",
		}, []string{"handler", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "message_handling_seconds",
			Help:    "Time from receiving a message to its final outcome, retries included.",
			Buckets: handlingBuckets,
		}, []string{"handler", "outcome"}),
	}
	if err := r.register(m.handled, m.duration); err != nil {
		return nil, err
	}
	return m, nil
}

// MessageHandled counts a message's final outcome and observes its
// duration.
func (m *Messages) MessageHandled(handler string, outcome bus.Outcome, elapsed time.Duration) {
	m.handled.WithLabelValues(handler, string(outcome)).Inc()
	m.duration.WithLabelValues(handler, string(outcome)).Observe(elapsed.Seconds())
}

// MessageRetried counts a run that failed and is retried.
func (m *Messages) MessageRetried(handler string) {
	m.handled.WithLabelValues(handler, string(bus.OutcomeRetried)).Inc()
}
