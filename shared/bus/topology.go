package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
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

// subscriptionOf returns the subscription whose queue is queue, or whose
// topic is the exchange exchange.
func (c Config) subscriptionOf(queue, exchange string) (Subscription, bool) {
	for _, s := range Subscriptions {
		if (queue != "" && c.QueueName(s.Topic, s.Service) == queue) || (exchange != "" && s.Topic == exchange) {
			return s, true
		}
	}
	return Subscription{}, false
}

// exchangeArgs are the arguments of exchange: a topic's exchange sends what
// no queue takes (its queue deleted by hand) to its consumer's dead-letter
// exchange instead of dropping it.
func (c Config) exchangeArgs(exchange string) amqp091.Table {
	if args, ok := c.declaredArgs("exchange", exchange); ok {
		return args
	}
	if s, ok := c.subscriptionOf("", exchange); ok {
		return amqp091.Table{"alternate-exchange": DeadLetterTopic(s.Service)}
	}
	return nil
}

// subscriptionQueueArgs are the arguments of queue: a subscription's queue
// moves what the broker itself drops (a max-length or message-TTL policy)
// to its service's dead-letter queue.
func (c Config) subscriptionQueueArgs(queue string) amqp091.Table {
	if args, ok := c.declaredArgs("queue", queue); ok {
		return args
	}
	args := c.queueArgs()
	if s, ok := c.subscriptionOf(queue, ""); ok {
		args["x-dead-letter-exchange"] = DeadLetterTopic(s.Service)
	}
	return args
}

// declared records, per broker and object, the arguments that Declare found
// an object with when they differ from today's (it was created by an
// earlier version), so that Watermill's own declarations repeat them:
// declaring an object with other arguments than it has is an error.
var declared sync.Map // "<url>\x00<kind> <name>" -> amqp091.Table

func (c Config) declaredArgs(kind, name string) (amqp091.Table, bool) {
	v, ok := declared.Load(c.declaredKey(kind, name))
	if !ok {
		return nil, false
	}
	return v.(amqp091.Table), true
}

func (c Config) declaredKey(kind, name string) string { return c.URL + "\x00" + kind + " " + name }

// legacyArgs are the arguments earlier versions declared objects with.
func (c Config) legacyArgs(kind string) amqp091.Table {
	if kind == "queue" {
		return c.queueArgs()
	}
	return nil
}

// Declare creates every exchange, queue and binding of the topology. It is
// idempotent and safe to run from several replicas at once. An exchange or
// queue that an earlier version created without today's arguments is kept
// as it is (changing them would mean deleting it, and the queue's
// messages), and log, when not nil, says what the operator can do.
func (c Config) Declare(ctx context.Context, log *slog.Logger) error {
	conn, err := Dial(ctx, c.URL, c.ConnectTimeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	// The dead-letter queues first: they are the others' alternate and
	// dead-letter exchanges.
	for _, svc := range WorkerServices {
		dl := DeadLetterTopic(svc)
		if err := c.declareBound(ctx, conn, log, dl, nil, dl, c.queueArgs()); err != nil {
			return err
		}
	}
	for _, s := range Subscriptions {
		q := c.QueueName(s.Topic, s.Service)
		if err := c.declareBound(ctx, conn, log, s.Topic, c.exchangeArgs(s.Topic), q, c.subscriptionQueueArgs(q)); err != nil {
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

// declareBound declares a fanout exchange and a queue bound to it.
func (c Config) declareBound(ctx context.Context, conn *amqp091.Connection, log *slog.Logger, exchange string, exchangeArgs amqp091.Table, queue string, queueArgs amqp091.Table) error {
	if err := c.declareOne(ctx, conn, log, "exchange", exchange, exchangeArgs, func(ch *amqp091.Channel, args amqp091.Table) error {
		return ch.ExchangeDeclare(exchange, "fanout", true, false, false, false, args)
	}); err != nil {
		return err
	}
	if err := c.declareOne(ctx, conn, log, "queue", queue, queueArgs, func(ch *amqp091.Channel, args amqp091.Table) error {
		_, err := ch.QueueDeclare(queue, true, false, false, false, args)
		return err
	}); err != nil {
		return err
	}
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	defer ch.Close()
	if err := ch.QueueBind(queue, "", exchange, false, nil); err != nil {
		return fmt.Errorf("bind queue %s to %s: %w", queue, exchange, err)
	}
	return nil
}

// declareOne declares one object with args or, when it exists with an
// earlier version's arguments, with those (and says so). Each try has its
// own channel: a refused declaration closes it.
func (c Config) declareOne(ctx context.Context, conn *amqp091.Connection, log *slog.Logger, kind, name string, args amqp091.Table, declare func(*amqp091.Channel, amqp091.Table) error) error {
	try := func(args amqp091.Table) error {
		ch, err := conn.Channel()
		if err != nil {
			return fmt.Errorf("open channel: %w", err)
		}
		defer ch.Close()
		return declare(ch, args)
	}
	err := try(args)
	var amqpErr *amqp091.Error
	if err == nil || !errors.As(err, &amqpErr) || amqpErr.Code != amqp091.PreconditionFailed || maps.Equal(args, c.legacyArgs(kind)) {
		if err != nil {
			return fmt.Errorf("declare %s %s: %w", kind, name, err)
		}
		return nil
	}
	legacy := c.legacyArgs(kind)
	if lerr := try(legacy); lerr != nil {
		return fmt.Errorf("declare %s %s: %w", kind, name, err) // neither form: the first error says why
	}
	declared.Store(c.declaredKey(kind, name), legacy)
	if log != nil {
		log.WarnContext(ctx, "an earlier version created this "+kind+" without the arguments that send what the broker would drop to a dead-letter queue; it is used as it is",
			slog.String(kind, name), slog.Any("missing_arguments", map[string]any(args)),
			slog.String("fix", "set a policy with these keys for it (rabbitmqctl set_policy --apply-to "+kind+"s, without the x- prefix), or delete it while it is empty"))
	}
	return nil
}

// topology is Watermill's topology builder: it declares the exchanges and
// queues with the arguments Declare uses, which Watermill's default builder
// (one set of arguments for all) cannot.
type topology struct{ c Config }

func (t topology) ExchangeDeclare(ch *amqp091.Channel, exchange string, cfg amqp.Config) error {
	return ch.ExchangeDeclare(exchange, cfg.Exchange.Type, cfg.Exchange.Durable, cfg.Exchange.AutoDeleted,
		cfg.Exchange.Internal, cfg.Exchange.NoWait, t.c.exchangeArgs(exchange))
}

func (t topology) BuildTopology(ch *amqp091.Channel, p amqp.BuildTopologyParams, cfg amqp.Config, _ watermill.LoggerAdapter) error {
	if _, err := ch.QueueDeclare(p.QueueName, cfg.Queue.Durable, cfg.Queue.AutoDelete, cfg.Queue.Exclusive,
		cfg.Queue.NoWait, t.c.subscriptionQueueArgs(p.QueueName)); err != nil {
		return fmt.Errorf("declare queue %s: %w", p.QueueName, err)
	}
	if p.ExchangeName == "" {
		return nil
	}
	if err := t.ExchangeDeclare(ch, p.ExchangeName, cfg); err != nil {
		return fmt.Errorf("declare exchange %s: %w", p.ExchangeName, err)
	}
	if err := ch.QueueBind(p.QueueName, p.RoutingKey, p.ExchangeName, cfg.QueueBind.NoWait, cfg.QueueBind.Arguments); err != nil {
		return fmt.Errorf("bind queue %s to %s: %w", p.QueueName, p.ExchangeName, err)
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
