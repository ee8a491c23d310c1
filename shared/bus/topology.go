package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/photopipe/photopipe/shared/event"
)

// Service names. They name queues, so they never change.
const (
	IngestAPI  = "ingest-api"
	Downloader = "downloader"
	Resizer    = "resizer"
	Recorder   = "recorder"
)

// Subscription is one service's durable queue on one topic.
type Subscription struct {
	Topic   string
	Service string
}

// Subscriptions lists who consumes what. Every service declares all of
// them at start, so a publish never reaches an exchange without its queues
// (RabbitMQ would drop it silently).
//
// The recorder consumes only the events that end a photo (and the
// dead-letter marks): the ingest-api moves a photo to processing in the
// transaction that requests it, and the resizer passes the original's
// details on in ThumbnailCreated and PhotoFailed, so the recorder learns
// nothing from PhotoRequested and PhotoDownloaded that it needs (each was
// one more quorum-queue delivery and update per photo).
var Subscriptions = []Subscription{
	{event.TopicPhotoRequested, Downloader},
	{event.TopicPhotoDownloaded, Resizer},
	{event.TopicThumbnailCreated, Recorder},
	{event.TopicPhotoFailed, Recorder},
	{event.TopicPhotoDeadLettered, Recorder},
}

// ObsoleteQueues are the queues of subscriptions that earlier versions
// declared: bound to their exchange but no longer consumed, they would
// fill up forever. Declare deletes each that no consumer holds (while a
// recorder of the earlier version still runs, it stays until the next
// start of any service). What they hold
// is not needed: the photos' state comes from the other events.
var ObsoleteQueues = []string{
	event.TopicPhotoRequested + "_" + Recorder,
	event.TopicPhotoDownloaded + "_" + Recorder,
}

// WorkerServices are the services that consume messages.
var WorkerServices = []string{Downloader, Resizer, Recorder}

// QueueName returns the queue of service on topic: "<topic>_<service>",
// except the downloader's PhotoRequested queue, which keeps the name that
// photo-processor clients expect.
func (c Config) QueueName(topic, service string) string {
	if topic == event.TopicPhotoRequested && service == Downloader {
		return c.PhotoProcessorQueue
	}
	return topic + "_" + service
}

// DeadLetterTopic returns the topic (a fanout exchange with one queue of the
// same name) that holds the messages service gave up on.
func DeadLetterTopic(service string) string {
	return "dead-letter." + service
}

func (c Config) queueArgs() amqp091.Table {
	return amqp091.Table{"x-queue-type": c.QueueType}
}

// Declare creates every exchange, queue and binding of the topology. It is
// idempotent and safe to run from several replicas at once.
func (c Config) Declare(ctx context.Context) error {
	conn, err := Dial(ctx, c.URL, c.ConnectTimeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	defer ch.Close()

	for _, s := range Subscriptions {
		if err := c.declareBound(ch, s.Topic, c.QueueName(s.Topic, s.Service)); err != nil {
			return err
		}
	}
	for _, svc := range WorkerServices {
		dl := DeadLetterTopic(svc)
		if err := c.declareBound(ch, dl, dl); err != nil {
			return err
		}
	}
	return deleteObsolete(conn)
}

// deleteObsolete deletes the ObsoleteQueues that exist and no consumer
// holds. Quorum queues refuse queue.delete's if-unused flag, so the
// consumer count comes from a passive declare first (a consumer that
// attaches in between is cancelled; it belongs to an earlier version that
// is being replaced). A missing queue closes the channel: each queue gets
// its own.
func deleteObsolete(conn *amqp091.Connection) error {
	for _, name := range ObsoleteQueues {
		ch, err := conn.Channel()
		if err != nil {
			return fmt.Errorf("open channel: %w", err)
		}
		q, err := ch.QueueDeclarePassive(name, true, false, false, false, nil)
		var amqpErr *amqp091.Error
		switch {
		case errors.As(err, &amqpErr) && amqpErr.Code == amqp091.NotFound:
			continue // gone already; the channel is closed
		case err != nil:
			_ = ch.Close()
			return fmt.Errorf("inspect obsolete queue %s: %w", name, err)
		case q.Consumers == 0:
			if _, err := ch.QueueDelete(name, false, false, false); err != nil {
				_ = ch.Close()
				return fmt.Errorf("delete obsolete queue %s: %w", name, err)
			}
		}
		_ = ch.Close()
	}
	return nil
}

func (c Config) declareBound(ch *amqp091.Channel, exchange, queue string) error {
	if err := ch.ExchangeDeclare(exchange, "fanout", true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare exchange %s: %w", exchange, err)
	}
	if _, err := ch.QueueDeclare(queue, true, false, false, false, c.queueArgs()); err != nil {
		return fmt.Errorf("declare queue %s: %w", queue, err)
	}
	if err := ch.QueueBind(queue, "", exchange, false, nil); err != nil {
		return fmt.Errorf("bind queue %s to %s: %w", queue, exchange, err)
	}
	return nil
}

// Dial connects to the broker, retrying until it answers or timeout passes:
// a broker that is still starting is normal when everything starts at once.
// url may list several nodes separated by commas; each round tries them in
// order (see brokers.go).
func Dial(ctx context.Context, url string, timeout time.Duration) (*amqp091.Connection, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	delay := 100 * time.Millisecond
	for {
		conn, err := dialFirst(url)
		if err == nil {
			return conn, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connect to broker %s: %w", redactAll(url), err)
		case <-time.After(delay):
		}
		delay = min(delay*2, 2*time.Second)
	}
}

// redact hides the password of an AMQP URL for messages and logs.
func redact(raw string) string {
	u, err := amqp091.ParseURI(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.Password = "xxxxx"
	return u.String()
}
