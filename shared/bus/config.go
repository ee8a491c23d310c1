// Package bus sets up photopipe's messaging over RabbitMQ with Watermill:
// the topology every service agrees on, publishers with confirms and a
// channel pool, subscribers on per-service queues, and the router's
// middleware (correlation id, dead letters, retry, panic recovery).
package bus

import (
	"errors"
	"fmt"
	"time"

	"github.com/photopipe/photopipe/shared/envconfig"
)

// Queue types a Config accepts.
const (
	QueueQuorum  = "quorum"
	QueueClassic = "classic"
)

// Config holds the bus settings shared by all services.
type Config struct {
	// URL is the AMQP URL of the broker (AMQP_URL).
	URL string
	// Prefetch is how many unacknowledged messages the broker pushes to each
	// worker ahead of its acks (AMQP_PREFETCH).
	Prefetch int
	// PublishChannels is the size of the publisher's channel pool; 0 would
	// open a channel per publish (AMQP_PUBLISH_CHANNELS).
	PublishChannels int
	// QueueType is quorum (replicated, counts deliveries) or classic
	// (AMQP_QUEUE_TYPE).
	QueueType string
	// PhotoProcessorQueue names the downloader's PhotoRequested queue
	// (AMQP_PHOTO_PROCESSOR_QUEUE). Every service must agree on it.
	PhotoProcessorQueue string
	// Retry settings for transient handler errors before a message is
	// dead-lettered (RETRY_MAX, RETRY_INITIAL, RETRY_MAX_INTERVAL).
	RetryMax         int
	RetryInitial     time.Duration
	RetryMaxInterval time.Duration
	// MaxDeliveries is how many times a message may be delivered without
	// being acknowledged (its worker crashed on it: out of memory, a kill)
	// before it is moved to the dead-letter queue instead of being handled
	// again (MAX_DELIVERIES). It needs quorum queues, which count deliveries.
	// The broker also counts deliveries that ended with a lost connection
	// while the message waited in a worker's prefetch, so the default (20,
	// RabbitMQ 4's own default delivery limit) leaves room for outages.
	MaxDeliveries int
	// ConnectTimeout bounds how long a service waits for the broker at start
	// (AMQP_CONNECT_TIMEOUT).
	ConnectTimeout time.Duration
}

// DefaultURL is the broker used when AMQP_URL is not set.
const DefaultURL = "amqp://guest:guest@127.0.0.1:5672/"

// LoadConfig reads the bus settings; defaultPrefetch is the service's own
// default for AMQP_PREFETCH. Problems are recorded in r.
func LoadConfig(r *envconfig.Reader, defaultPrefetch int) Config {
	return Config{
		URL:                 r.String("AMQP_URL", DefaultURL),
		Prefetch:            r.Int("AMQP_PREFETCH", defaultPrefetch),
		PublishChannels:     r.Int("AMQP_PUBLISH_CHANNELS", 8),
		QueueType:           r.String("AMQP_QUEUE_TYPE", QueueQuorum),
		PhotoProcessorQueue: r.String("AMQP_PHOTO_PROCESSOR_QUEUE", "photo-processor"),
		RetryMax:            r.Int("RETRY_MAX", 10),
		RetryInitial:        r.Duration("RETRY_INITIAL", 200*time.Millisecond),
		RetryMaxInterval:    r.Duration("RETRY_MAX_INTERVAL", 5*time.Second),
		ConnectTimeout:      r.Duration("AMQP_CONNECT_TIMEOUT", 60*time.Second),
		MaxDeliveries:       r.Int("MAX_DELIVERIES", 20),
	}
}

// Validate reports every setting that cannot work.
func (c Config) Validate() error {
	var errs []error
	if _, err := brokerURLs(c.URL); err != nil { // one URL, or several nodes separated by commas
		errs = append(errs, fmt.Errorf("AMQP_URL: %w", err))
	}
	if c.Prefetch < 1 {
		errs = append(errs, errors.New("AMQP_PREFETCH: must be at least 1"))
	}
	if c.PublishChannels < 1 {
		errs = append(errs, errors.New("AMQP_PUBLISH_CHANNELS: must be at least 1"))
	}
	if c.QueueType != QueueQuorum && c.QueueType != QueueClassic {
		errs = append(errs, fmt.Errorf("AMQP_QUEUE_TYPE: %q is neither quorum nor classic", c.QueueType))
	}
	if c.PhotoProcessorQueue == "" {
		errs = append(errs, errors.New("AMQP_PHOTO_PROCESSOR_QUEUE: must not be empty"))
	}
	if c.RetryMax < 0 {
		errs = append(errs, errors.New("RETRY_MAX: must not be negative"))
	}
	if c.RetryInitial <= 0 || c.RetryMaxInterval < c.RetryInitial {
		errs = append(errs, errors.New("RETRY_INITIAL, RETRY_MAX_INTERVAL: need 0 < RETRY_INITIAL <= RETRY_MAX_INTERVAL"))
	}
	if c.MaxDeliveries < 1 {
		errs = append(errs, errors.New("MAX_DELIVERIES: must be at least 1"))
	}
	if c.ConnectTimeout <= 0 {
		errs = append(errs, errors.New("AMQP_CONNECT_TIMEOUT: must be positive"))
	}
	return errors.Join(errs...)
}
