// Package deadletter lets an operator inspect, replay and discard the
// messages that services moved to their dead-letter queues. A replayed
// message goes back to the one queue it failed in (through the default
// exchange), not to every subscriber of its topic, and keeps its message
// and correlation ids.
package deadletter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/photopipe/photopipe/shared/bus"
)

// ErrUnknownService is returned for a service that has no dead-letter queue.
var ErrUnknownService = errors.New("unknown service")

// Entry is one dead-lettered message.
type Entry struct {
	MessageID      string    `json:"message_id"`
	PhotoID        string    `json:"photo_id"`
	Attempt        int       `json:"attempt"`
	CorrelationID  string    `json:"correlation_id"`
	Event          string    `json:"event"`
	Queue          string    `json:"queue"`
	Handler        string    `json:"handler"`
	Reason         string    `json:"reason"`
	DeadLetteredAt time.Time `json:"dead_lettered_at,omitzero"` // absent when unknown
}

// Summary describes one service's dead-letter queue.
type Summary struct {
	Service string `json:"service"`
	Queue   string `json:"queue"`
	Count   int    `json:"count"`
	// Reasons counts the messages by reason, with the ids in them (photo
	// ids, storage keys) written as "<id>", so that one cause is counted
	// once however many photos it hit.
	Reasons map[string]int `json:"reasons"`
}

// Admin works on the dead-letter queues of one broker (virtual host).
type Admin struct {
	cfg bus.Config
	// Discarding, when set, is called with the dead letters a discard
	// chose, before they are dropped; when it fails, none is dropped. The
	// ingest-api ends their photos' attempts there, so that no photo waits
	// for a message that is gone.
	Discarding func(ctx context.Context, service string, entries []Entry) error
}

// New returns an Admin for the broker of cfg.
func New(cfg bus.Config) *Admin {
	return &Admin{cfg: cfg}
}

func (a *Admin) queue(service string) (string, error) {
	if !slices.Contains(bus.WorkerServices, service) {
		return "", fmt.Errorf("%w %q (known: %s)", ErrUnknownService, service, strings.Join(bus.WorkerServices, ", "))
	}
	return bus.DeadLetterTopic(service), nil
}

// session is a channel on which every message present in a queue has been
// taken (unacknowledged); Close returns the ones not acked or dropped.
type session struct {
	conn    *amqp091.Connection
	ch      *amqp091.Channel
	queue   string
	msgs    []amqp091.Delivery
	settled int // of msgs, acknowledged
}

func (a *Admin) open(ctx context.Context, queue string, max int) (*session, error) {
	conn, err := bus.Dial(ctx, a.cfg.URL, 10*time.Second)
	if err != nil {
		return nil, err
	}
	ch, err := conn.Channel()
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("open channel: %w", err)
	}
	s := &session{conn: conn, ch: ch, queue: queue}
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, amqp091.Table{"x-queue-type": a.cfg.QueueType})
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("inspect queue %s: %w", queue, err)
	}
	n := q.Messages
	if max > 0 && n > max {
		n = max
	}
	for range n {
		d, ok, err := ch.Get(queue, false)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("read %s: %w", queue, err)
		}
		if !ok {
			break
		}
		s.msgs = append(s.msgs, d)
	}
	return s, nil
}

// returnWait bounds how long Close waits for the queue to take its
// messages back.
const returnWait = 5 * time.Second

// Close returns every message not yet settled to the queue and waits until
// the queue counts them again (at most returnWait): a quorum queue takes
// them back asynchronously, and a session that began meanwhile would miss
// them (a replay right after a listing or another replay found none).
func (s *session) Close() {
	defer s.conn.Close()
	held := len(s.msgs) - s.settled
	ready, err := s.ready() // without the held ones, with any that arrived
	_ = s.ch.Close()        // unacknowledged messages go back to the queue
	if held == 0 || err != nil {
		return
	}
	deadline := time.Now().Add(returnWait)
	for time.Now().Before(deadline) {
		n, err := s.ready()
		if err != nil || n >= ready+held {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ready counts the queue's ready messages, on a channel of its own.
func (s *session) ready() (int, error) {
	ch, err := s.conn.Channel()
	if err != nil {
		return 0, err
	}
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(s.queue, true, false, false, false, nil)
	return q.Messages, err
}

func (a *Admin) entry(d amqp091.Delivery, service string) Entry {
	str := func(k string) string {
		v, _ := d.Headers[k].(string)
		return v
	}
	var h struct {
		PhotoID string `json:"photo_id"`
		Attempt int    `json:"attempt"`
	}
	_ = json.Unmarshal(d.Body, &h)
	at, _ := time.Parse(time.RFC3339Nano, str(bus.DeadLetteredAtKey))
	e := Entry{
		MessageID: str("_watermill_message_uuid"), PhotoID: h.PhotoID, Attempt: h.Attempt,
		CorrelationID: str("correlation_id"), Event: str("name"), Queue: a.replayQueue(d, service),
		Handler: str(bus.HandlerKey), Reason: str(bus.ReasonKey), DeadLetteredAt: at,
	}
	if e.Reason != "" {
		return e
	}
	// Not the service's: the broker's own dead letter (a queue's limit) or
	// an event no queue was bound to (its alternate exchange).
	if r := str("x-first-death-reason"); r != "" {
		e.Reason = bus.BrokerDropReason(r, e.Queue)
		if deaths, _ := d.Headers["x-death"].([]any); len(deaths) > 0 {
			death, _ := deaths[0].(amqp091.Table)
			if at, ok := death["time"].(time.Time); ok {
				e.DeadLetteredAt = at.UTC()
			}
		}
	} else if d.Exchange != "" && d.Exchange != bus.DeadLetterTopic(service) {
		e.Reason = bus.UnroutableReason(d.Exchange)
		e.DeadLetteredAt = d.Timestamp.UTC() // published (and so dead-lettered) then; zero (omitted) from earlier versions
	} else {
		e.Reason = "rejected by the broker"
	}
	return e
}

// replayQueue is where a dead letter came from: recorded by the service,
// by the broker for its own dead letters, or, for an event that reached
// the dead-letter queue as its topic's alternate exchange, the service's
// queue of that topic.
func (a *Admin) replayQueue(d amqp091.Delivery, service string) string {
	if q, _ := d.Headers[bus.QueueKey].(string); q != "" {
		return q
	}
	if q, _ := d.Headers["x-first-death-queue"].(string); q != "" {
		return q
	}
	for _, s := range bus.Subscriptions {
		if s.Topic == d.Exchange && s.Service == service {
			return a.cfg.QueueName(s.Topic, s.Service)
		}
	}
	return ""
}

// Summaries describes every service's dead-letter queue, counting reasons
// over at most sample messages of each.
func (a *Admin) Summaries(ctx context.Context, sample int) ([]Summary, error) {
	out := make([]Summary, 0, len(bus.WorkerServices))
	for _, svc := range bus.WorkerServices {
		s, _, err := a.List(ctx, svc, 0, 0, sample)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// List returns the summary of service's dead-letter queue (reasons over at
// most sample messages) and the entries from offset, at most limit, oldest
// first. Listing does not remove anything.
func (a *Admin) List(ctx context.Context, service string, offset, limit, sample int) (Summary, []Entry, error) {
	queue, err := a.queue(service)
	if err != nil {
		return Summary{}, nil, err
	}
	s, err := a.open(ctx, queue, max(sample, offset+limit))
	if err != nil {
		return Summary{}, nil, err
	}
	defer s.Close()
	q, err := s.ch.QueueDeclarePassive(queue, true, false, false, false, amqp091.Table{"x-queue-type": a.cfg.QueueType})
	if err != nil {
		return Summary{}, nil, fmt.Errorf("inspect queue %s: %w", queue, err)
	}
	sum := Summary{Service: service, Queue: queue, Count: q.Messages + len(s.msgs), Reasons: map[string]int{}}
	entries := make([]Entry, 0, len(s.msgs))
	for _, d := range s.msgs {
		e := a.entry(d, service)
		sum.Reasons[reasonKind(e.Reason)]++
		entries = append(entries, e)
	}
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].DeadLetteredAt.Before(entries[j].DeadLetteredAt) })
	if offset >= len(entries) {
		return sum, []Entry{}, nil
	}
	entries = entries[offset:]
	if limit >= 0 && limit < len(entries) {
		entries = entries[:limit]
	}
	return sum, entries, nil
}

// uuidPattern matches a UUID in any case.
var uuidPattern = regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)

// tempPattern matches the random part of local storage's temporary file
// names (".tmp-<16 hex>-thumb.jpg").
var tempPattern = regexp.MustCompile(`\.tmp-[0-9a-f]{16}-`)

// reasonKind is a reason with its UUIDs (photo ids, and the storage keys
// and URLs made of them) and temporary file names written as "<id>".
func reasonKind(reason string) string {
	return tempPattern.ReplaceAllLiteralString(uuidPattern.ReplaceAllLiteralString(reason, "<id>"), ".tmp-<id>-")
}

// Selection chooses dead letters by message id or photo id; an empty
// selection with All set chooses every one.
type Selection struct {
	All        bool
	MessageIDs []string
	PhotoIDs   []string
}

func (sel Selection) matches(e Entry) bool {
	return sel.All || slices.Contains(sel.MessageIDs, e.MessageID) || slices.Contains(sel.PhotoIDs, e.PhotoID)
}

// ErrEmptySelection is returned when a selection chooses nothing explicitly.
var ErrEmptySelection = errors.New("choose messages by id, by photo id, or all")

// Result counts what a replay or discard did.
type Result struct {
	Replayed  int      `json:"replayed,omitempty"`
	Discarded int      `json:"discarded,omitempty"`
	Failed    []string `json:"failed,omitempty"`
}

// Replay sends the selected dead letters back to the queues they failed in.
func (a *Admin) Replay(ctx context.Context, service string, sel Selection) (Result, error) {
	return a.settle(ctx, service, sel, true)
}

// Discard drops the selected dead letters for good.
func (a *Admin) Discard(ctx context.Context, service string, sel Selection) (Result, error) {
	return a.settle(ctx, service, sel, false)
}

// replayHeaders are dropped from a replayed message: the broker's counts
// and the record of the failure, so it starts afresh.
var replayHeaders = []string{
	"x-delivery-count", "x-death", "x-first-death-queue", "x-first-death-reason", "x-first-death-exchange",
	"x-last-death-queue", "x-last-death-reason", "x-last-death-exchange",
	bus.ReasonKey, bus.TopicKey, bus.HandlerKey, "subscriber_poisoned", bus.DeadLetteredAtKey,
	"_watermill_amqp_redelivered",
}

func (a *Admin) settle(ctx context.Context, service string, sel Selection, replay bool) (Result, error) {
	var res Result
	if !sel.All && len(sel.MessageIDs) == 0 && len(sel.PhotoIDs) == 0 {
		return res, ErrEmptySelection
	}
	queue, err := a.queue(service)
	if err != nil {
		return res, err
	}
	s, err := a.open(ctx, queue, 0)
	if err != nil {
		return res, err
	}
	defer s.Close()
	var returns chan amqp091.Return
	if replay {
		if err := s.ch.Confirm(false); err != nil {
			return res, fmt.Errorf("confirm mode: %w", err)
		}
		// One at most: each replay waits for its confirm, which the broker
		// sends after the return of an unroutable message.
		returns = s.ch.NotifyReturn(make(chan amqp091.Return, 1))
	}
	var chosen []amqp091.Delivery
	var entries []Entry
	for _, d := range s.msgs {
		if e := a.entry(d, service); sel.matches(e) {
			chosen, entries = append(chosen, d), append(entries, e)
		}
	}
	if !replay && len(entries) > 0 && a.Discarding != nil {
		if err := a.Discarding(ctx, service, entries); err != nil {
			return res, fmt.Errorf("%w: %w", ErrDiscarding, err)
		}
	}
	for i, d := range chosen {
		e := entries[i]
		if replay {
			if err := republish(ctx, s.ch, returns, d, e.Queue); err != nil {
				res.Failed = append(res.Failed, fmt.Sprintf("%s: %v", e.MessageID, err))
				continue
			}
			res.Replayed++
		} else {
			res.Discarded++
		}
		if err := d.Ack(false); err != nil {
			return res, fmt.Errorf("settle %s: %w", e.MessageID, err)
		}
		s.settled++
	}
	return res, nil
}

// ErrDiscarding wraps the error of Admin.Discarding: nothing was dropped.
var ErrDiscarding = errors.New("discard: the photos' attempts could not be ended, nothing was dropped")

func republish(ctx context.Context, ch *amqp091.Channel, returns <-chan amqp091.Return, d amqp091.Delivery, queue string) error {
	if queue == "" {
		return errors.New("the message does not say which queue it failed in")
	}
	if slices.Contains(bus.ObsoleteQueues, queue) {
		// Deleted: the default exchange would drop it and still confirm.
		return fmt.Errorf("queue %s is no longer consumed (its event no longer matters to the service): discard the message", queue)
	}
	headers := amqp091.Table{}
	for k, v := range d.Headers {
		headers[k] = v
	}
	for _, k := range replayHeaders {
		delete(headers, k)
	}
	headers["photopipe_replayed_at"] = time.Now().UTC().Format(time.RFC3339Nano)
	select {
	case <-returns: // of an earlier message whose confirm failed
	default:
	}
	conf, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, true, false, amqp091.Publishing{
		Headers: headers, Body: d.Body, ContentType: d.ContentType, DeliveryMode: amqp091.Persistent,
		MessageId: d.MessageId, CorrelationId: d.CorrelationId,
	})
	if err != nil {
		return fmt.Errorf("publish to %s: %w", queue, err)
	}
	ok, err := conf.WaitContext(ctx)
	if err != nil {
		return fmt.Errorf("publish to %s: %w", queue, err)
	}
	if !ok {
		return fmt.Errorf("publish to %s: refused by the broker", queue)
	}
	select {
	case <-returns:
		// The default exchange would have dropped it; it stays here.
		return fmt.Errorf("queue %s does not exist (deleted?): start the service that consumes it, which declares it, then replay", queue)
	default:
		return nil
	}
}
