package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"regexp"
	"strings"
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

// DeadLetterCopies is the pseudo-topic of the recorder's queue
// "dead-letters_recorder", which every dead-letter exchange feeds too: a
// copy of each dead letter. The broker dead-letters messages on its own (an
// event no queue was bound to, a message a max-length or TTL policy pushed
// out) and tells no service; from the copies the recorder marks their
// photos as waiting in a dead-letter queue (DeadLetterMark). The dead
// letters themselves stay in the services' dead-letter queues.
const DeadLetterCopies = "dead-letters"

// copiesMaxLength bounds the queue of dead-letter copies (the broker drops
// the oldest beyond it): nothing consumes it while no recorder of this
// version runs (an earlier one after a rollback), and the dead letters
// themselves are safe in their own queues.
const copiesMaxLength = 100_000

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
	if s, ok := c.subscriptionOf("", exchange); ok {
		return amqp091.Table{"alternate-exchange": DeadLetterTopic(s.Service)}
	}
	return nil
}

// subscriptionQueueArgs are the arguments of queue: a subscription's queue
// moves what the broker itself drops (a max-length or message-TTL policy)
// to its service's dead-letter queue.
func (c Config) subscriptionQueueArgs(queue string) amqp091.Table {
	args := c.queueArgs()
	if s, ok := c.subscriptionOf(queue, ""); ok {
		args["x-dead-letter-exchange"] = DeadLetterTopic(s.Service)
	}
	return args
}

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
// as it is (RabbitMQ cannot change them; deleting it would lose the
// queue's messages), and log, when not nil, says how to add them.
func (c Config) Declare(ctx context.Context, log *slog.Logger) error {
	conn, err := Dial(ctx, c.URL, c.ConnectTimeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	var old []legacyObject
	// The dead-letter queues first: they are the others' alternate and
	// dead-letter exchanges.
	for _, svc := range WorkerServices {
		dl := DeadLetterTopic(svc)
		if err := c.declareBound(conn, &old, dl, nil, dl, c.queueArgs()); err != nil {
			return err
		}
	}
	if err := c.declareCopies(conn, &old); err != nil {
		return err
	}
	for _, s := range Subscriptions {
		q := c.QueueName(s.Topic, s.Service)
		if err := c.declareBound(conn, &old, s.Topic, c.exchangeArgs(s.Topic), q, c.subscriptionQueueArgs(q)); err != nil {
			return err
		}
	}
	if len(old) > 0 && log != nil {
		log.WarnContext(ctx, "exchanges and queues created by an earlier version lack the arguments that send what the broker would drop "+
			"(an event no queue takes, a message a max-length or TTL policy pushes out) to a dead-letter queue; they work as before. "+
			"To add them, apply these policies (merged with any policy of yours on the same object: only one applies), "+
			"or stop every service, delete them while empty and start again; ignore this if such policies are in place",
			slog.Any("objects", legacyNames(old)), slog.Any("policies", c.policyCommands(old)))
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

// legacyObject is an exchange or queue that an earlier version created
// without the arguments in missing.
type legacyObject struct {
	kind, name string
	missing    amqp091.Table
}

func legacyNames(old []legacyObject) []string {
	out := make([]string, len(old))
	for i, o := range old {
		out[i] = o.kind + " " + o.name
	}
	return out
}

// policyCommands returns, for each object, the rabbitmqctl command that
// gives it the missing arguments as a policy (whose keys drop the "x-").
func (c Config) policyCommands(old []legacyObject) []string {
	vhost := "/"
	if nodes, err := brokerURLs(c.URL); err == nil && len(nodes) > 0 {
		vhost = nodes[0].uri.Vhost
	}
	out := make([]string, 0, len(old))
	for _, o := range old {
		def := map[string]any{}
		for k, v := range o.missing {
			def[strings.TrimPrefix(k, "x-")] = v
		}
		js, _ := json.Marshal(def)
		out = append(out, fmt.Sprintf("rabbitmqctl set_policy -p %s --apply-to %ss photopipe-%s '^%s$' '%s'",
			vhost, o.kind, o.name, regexp.QuoteMeta(o.name), js))
	}
	return out
}

// declareBound declares a fanout exchange and a queue bound to it; old,
// when not nil, collects those an earlier version created.
func (c Config) declareBound(conn *amqp091.Connection, old *[]legacyObject, exchange string, exchangeArgs amqp091.Table, queue string, queueArgs amqp091.Table) error {
	if err := c.declareOne(conn, old, "exchange", exchange, exchangeArgs, func(ch *amqp091.Channel, args amqp091.Table) error {
		return ch.ExchangeDeclare(exchange, "fanout", true, false, false, false, args)
	}); err != nil {
		return err
	}
	return c.declareQueue(conn, old, queue, queueArgs, exchange)
}

// declareQueue declares a queue and binds it to each of exchanges, which
// must exist.
func (c Config) declareQueue(conn *amqp091.Connection, old *[]legacyObject, queue string, queueArgs amqp091.Table, exchanges ...string) error {
	if err := c.declareOne(conn, old, "queue", queue, queueArgs, func(ch *amqp091.Channel, args amqp091.Table) error {
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
	for _, exchange := range exchanges {
		if err := ch.QueueBind(queue, "", exchange, false, nil); err != nil {
			return fmt.Errorf("bind queue %s to %s: %w", queue, exchange, err)
		}
	}
	return nil
}

// declareCopies declares the recorder's queue of dead-letter copies
// (DeadLetterCopies) bound to every dead-letter exchange, which must exist.
func (c Config) declareCopies(conn *amqp091.Connection, old *[]legacyObject) error {
	args := c.queueArgs()
	args["x-max-length"] = copiesMaxLength
	exchanges := make([]string, len(WorkerServices))
	for i, svc := range WorkerServices {
		exchanges[i] = DeadLetterTopic(svc)
	}
	return c.declareQueue(conn, old, c.QueueName(DeadLetterCopies, Recorder), args, exchanges...)
}

// declareOne declares one object with args or, when it exists with an
// earlier version's arguments, with those (recorded in old). Each try has
// its own channel: a refused declaration closes it.
func (c Config) declareOne(conn *amqp091.Connection, old *[]legacyObject, kind, name string, args amqp091.Table, declare func(*amqp091.Channel, amqp091.Table) error) error {
	try := func(args amqp091.Table) error {
		ch, err := conn.Channel()
		if err != nil {
			return fmt.Errorf("open channel: %w", err)
		}
		defer ch.Close()
		return declare(ch, args)
	}
	err := try(args)
	legacy := c.legacyArgs(kind)
	var amqpErr *amqp091.Error
	if err == nil || !errors.As(err, &amqpErr) || amqpErr.Code != amqp091.PreconditionFailed || reflect.DeepEqual(args, legacy) {
		if err != nil {
			return fmt.Errorf("declare %s %s: %w", kind, name, err)
		}
		return nil
	}
	if err := try(legacy); err != nil {
		// Neither today's nor an earlier version's: this error names what
		// differs from the earlier version's (a queue type, say).
		return fmt.Errorf("declare %s %s: %w", kind, name, err)
	}
	if old != nil {
		missing := amqp091.Table{}
		for k, v := range args {
			if _, ok := legacy[k]; !ok {
				missing[k] = v
			}
		}
		*old = append(*old, legacyObject{kind: kind, name: name, missing: missing})
	}
	return nil
}

// topology is Watermill's topology builder. It declares exchanges and
// queues as Declare does (today's arguments, or an earlier version's for an
// object that has those), on a connection of its own: Watermill's channel
// would be closed by the first refused declaration. So a queue deleted by
// hand is declared again, when the consumers resubscribe, with today's
// arguments.
//
// One declaration of an object serves all the workers that ask within
// declareReuse, its error too: they all resubscribe at once, and Watermill
// retries a failed subscription every 100 ms, which with a connection per
// try would open dozens a second for as long as a declaration is refused.
type topology struct {
	c      Config
	recent *recentDeclarations
	// dial opens the connection of a declaration (tests count them).
	dial func() (*amqp091.Connection, error)
}

// declareReuse is how long one declaration of an object stands for others.
const declareReuse = time.Second

// topologyTimeout bounds the connection of one topology declaration.
const topologyTimeout = 10 * time.Second

type recentDeclarations struct {
	mu sync.Mutex // held while declaring: concurrent workers wait for one declaration
	at map[string]declaration
}

type declaration struct {
	at  time.Time
	err error
}

func newTopology(c Config) topology {
	return topology{c: c, recent: &recentDeclarations{at: map[string]declaration{}}, dial: func() (*amqp091.Connection, error) {
		return Dial(context.Background(), c.URL, topologyTimeout)
	}}
}

func (t topology) declare(exchange, queue string) error {
	key := exchange + "\x00" + queue
	t.recent.mu.Lock()
	defer t.recent.mu.Unlock()
	if d, ok := t.recent.at[key]; ok && time.Since(d.at) < declareReuse {
		return d.err
	}
	err := t.declareNow(exchange, queue)
	t.recent.at[key] = declaration{at: time.Now(), err: err}
	return err
}

func (t topology) declareNow(exchange, queue string) error {
	conn, err := t.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	if queue == t.c.QueueName(DeadLetterCopies, Recorder) {
		for _, svc := range WorkerServices {
			dl := DeadLetterTopic(svc)
			if err := t.c.declareBound(conn, nil, dl, nil, dl, t.c.queueArgs()); err != nil {
				return err
			}
		}
		return t.c.declareCopies(conn, nil)
	}
	if queue == "" {
		return t.c.declareOne(conn, nil, "exchange", exchange, t.c.exchangeArgs(exchange), func(ch *amqp091.Channel, args amqp091.Table) error {
			return ch.ExchangeDeclare(exchange, "fanout", true, false, false, false, args)
		})
	}
	return t.c.declareBound(conn, nil, exchange, t.c.exchangeArgs(exchange), queue, t.c.subscriptionQueueArgs(queue))
}

func (t topology) ExchangeDeclare(_ *amqp091.Channel, exchange string, _ amqp.Config) error {
	return t.declare(exchange, "")
}

func (t topology) BuildTopology(_ *amqp091.Channel, p amqp.BuildTopologyParams, _ amqp.Config, _ watermill.LoggerAdapter) error {
	if p.ExchangeName == "" {
		return errors.New("photopipe's queues are bound to an exchange")
	}
	return t.declare(p.ExchangeName, p.QueueName)
}

// Dial connects to the broker, retrying until it answers or timeout passes:
// a broker that is still starting is normal when everything starts at once.
// url may list several nodes separated by commas; each round tries them in
// order (see brokers.go).
func Dial(ctx context.Context, url string, timeout time.Duration) (*amqp091.Connection, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	delay := 100 * time.Millisecond
	for {
		// An attempt ends by the deadline too: a broker that accepts the
		// connection but does not answer holds it until then.
		conn, err := dialFirst(url, deadline)
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
