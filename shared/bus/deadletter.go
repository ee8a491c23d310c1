package bus

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/photopipe/photopipe/shared/event"
)

// Dead-letter metadata, besides QueueKey, ServiceKey and DeadLetteredAtKey.
const (
	ReasonKey  = middleware.ReasonForPoisonedKey
	TopicKey   = middleware.PoisonedTopicKey
	HandlerKey = middleware.PoisonedHandlerKey
	// deliveryCountKey is set by quorum queues on every redelivery.
	deliveryCountKey = "x-delivery-count"
)

// deadLetter returns the middleware that moves a message whose handling
// failed for good to the service's dead-letter queue, and tells the
// recorder that its photo waits there (PhotoDeadLettered). The message is
// then acknowledged: the error never reaches the broker as a nack.
func (c Config) deadLetter(service string, pub message.Publisher, log *slog.Logger) message.HandlerMiddleware {
	topic := DeadLetterTopic(service)
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			out, err := h(msg)
			if err == nil {
				return out, nil
			}
			ctx := msg.Context()
			if ctx.Err() != nil {
				// The service is stopping (the router cancels the
				// messages in flight): the failure may be the stop's own
				// (a cancelled transaction), and retrying was cut short.
				// Back to the queue, for another replica or the next start.
				return nil, err
			}
			if message.SubscribeTopicFromCtx(ctx) == DeadLetterCopies {
				// A copy is never dead-lettered or announced: its dead
				// letter is safe in its own queue, and a dead letter of
				// the copy would be copied again (and announced with the
				// recorder's failure in place of the real one). Its
				// handler retries what may pass; what reaches here is
				// refused for good.
				log.ErrorContext(ctx, "dead letter not marked", slog.String("message_id", msg.UUID), slog.String("error", err.Error()))
				return nil, nil
			}
			dl := msg.Copy()
			dl.Metadata.Set(ReasonKey, err.Error())
			dl.Metadata.Set(TopicKey, message.SubscribeTopicFromCtx(ctx))
			dl.Metadata.Set(HandlerKey, handlerBase(message.HandlerNameFromCtx(ctx)))
			dl.Metadata.Set(DeadLetteredAtKey, time.Now().UTC().Format(time.RFC3339Nano))
			delete(dl.Metadata, deliveryCountKey)
			if perr := publishPatiently(ctx, pub, topic, dl); perr != nil {
				// Not acknowledged: the broker redelivers it later.
				return nil, fmt.Errorf("dead-letter message: %w (after: %w)", perr, err)
			}
			markDeadLettered(ctx)
			log.ErrorContext(ctx, "message dead-lettered",
				slog.String("message_id", msg.UUID), slog.String("queue", msg.Metadata.Get(QueueKey)),
				slog.String("error", err.Error()))
			c.announce(service, pub, msg, err, log)
			return nil, nil
		}
	}
}

// announce publishes PhotoDeadLettered for the photo the message is about,
// unless the message is itself such an announcement (no loops).
func (c Config) announce(service string, pub message.Publisher, msg *message.Message, cause error, log *slog.Logger) {
	topic := message.SubscribeTopicFromCtx(msg.Context())
	if topic == event.TopicPhotoDeadLettered {
		return
	}
	var h event.Header
	if json.Unmarshal(msg.Payload, &h) != nil || h.PhotoID == "" {
		return
	}
	e := &event.PhotoDeadLettered{
		Header:  event.NewHeader(h.PhotoID, h.Attempt),
		Service: service,
		Queue:   msg.Metadata.Get(QueueKey),
		Topic:   topic,
		Reason:  cause.Error(),
	}
	out, err := Marshaler.Marshal(e)
	if err == nil {
		middleware.SetCorrelationID(middleware.MessageCorrelationID(msg), out)
		err = pub.Publish(event.TopicPhotoDeadLettered, out)
	}
	if err != nil {
		// The dead letter itself is safe; only the photo's view lags.
		log.WarnContext(msg.Context(), "dead letter not announced", slog.String("error", err.Error()))
	}
}

// BrokerDropReason describes a message the broker dead-lettered from
// queue for reason (its x-first-death-reason).
func BrokerDropReason(reason, queue string) string {
	why := map[string]string{
		"maxlen":         "the queue was full (a max-length limit)",
		"expired":        "its time to live ran out (a message-TTL limit)",
		"rejected":       "a consumer rejected it",
		"delivery_limit": "it was delivered too often (a delivery limit)",
	}[reason]
	if why == "" {
		why = reason
	}
	return fmt.Sprintf("dropped by the broker from queue %s: %s", queue, why)
}

// UnroutableReason describes an event that reached a dead-letter queue as
// the alternate exchange of exchange: no queue was bound to it.
func UnroutableReason(exchange string) string {
	return fmt.Sprintf("unroutable: no queue was bound to exchange %s when it was published (was its queue deleted?)", exchange)
}

// DeadLetterMark returns the mark of a photo that a copy of a dead letter
// (from the DeadLetterCopies queue) calls for, or ok false when it calls
// for none: the dead letters of the broker (a max-length or TTL policy, an
// event no queue took), which no service announces, and PhotoDeadLettered
// announcements that did not reach the photo (the recorder dead-lettered
// one when its database was away for longer than its retries, or the
// broker dropped one): the announcement itself, which says where the
// photo's message waits. The other dead letters of services were
// announced when they were made.
func (c Config) DeadLetterMark(msg *message.Message) (e *event.PhotoDeadLettered, ok bool) {
	if msg.Metadata.Get("name") == event.TopicPhotoDeadLettered || msg.Metadata.Get(TopicKey) == event.TopicPhotoDeadLettered {
		var notice event.PhotoDeadLettered
		if json.Unmarshal(msg.Payload, &notice) != nil || notice.PhotoID == "" {
			return nil, false
		}
		return &notice, true
	}
	if msg.Metadata.Get(ReasonKey) != "" {
		return nil, false
	}
	var h event.Header
	if json.Unmarshal(msg.Payload, &h) != nil || h.PhotoID == "" {
		return nil, false
	}
	var s Subscription
	var reason string
	if r := msg.Metadata.Get("x-first-death-reason"); r != "" {
		queue := msg.Metadata.Get("x-first-death-queue")
		if s, ok = c.subscriptionOf(queue, ""); !ok {
			return nil, false
		}
		reason = BrokerDropReason(r, queue)
	} else {
		// Routed by the alternate exchange of its topic, which the
		// event's name is.
		if s, ok = c.subscriptionOf("", msg.Metadata.Get("name")); !ok {
			return nil, false
		}
		reason = UnroutableReason(s.Topic)
	}
	return &event.PhotoDeadLettered{
		Header:  event.NewHeader(h.PhotoID, h.Attempt),
		Service: s.Service, Queue: c.QueueName(s.Topic, s.Service), Topic: s.Topic, Reason: reason,
	}, true
}

// AddDeadLetterMarks consumes the copies of dead letters from sub (one
// worker: they are rare) and passes the marks they call for to mark. A
// mark that fails is tried again, with backoff up to markRetryMax, until
// it passes or its context ends (a stop past its shutdown timeout; the
// copy then goes back to its queue):
// the marks behind it wait meanwhile, which is what a database that is
// away calls for. One refused for good (a photo id that is not one) is
// logged and dropped: the dead letter itself is safe in its queue. A copy
// is never dead-lettered, nor refused after MaxDeliveries.
func (c Config) AddDeadLetterMarks(router *message.Router, sub message.Subscriber, mark func(context.Context, *event.PhotoDeadLettered) error, log *slog.Logger) {
	router.AddConsumerHandler("recorder.dead-letter-copies", DeadLetterCopies, sub, func(msg *message.Message) error {
		e, ok := c.DeadLetterMark(msg)
		if !ok {
			return nil
		}
		ctx := msg.Context()
		delay := c.RetryInitial
		for {
			// A stop that gives up does not wait for a mark that hangs (a
			// database that takes connections but not writes): the copy
			// goes back to its queue, and a mark is idempotent.
			res := make(chan error, 1)
			go func() { res <- mark(ctx, e) }()
			var err error
			select {
			case err = <-res:
			case <-ctx.Done():
				return ctx.Err()
			}
			if err == nil {
				return nil
			}
			if IsPermanent(err) {
				log.WarnContext(ctx, "dead letter not marked", slog.String("error", err.Error()))
				return nil
			}
			log.WarnContext(ctx, "dead letter not marked yet; trying again", slog.String("error", err.Error()), slog.Duration("in", delay))
			select {
			case <-ctx.Done():
				return err
			case <-time.After(delay):
			}
			delay = min(max(delay*2, time.Millisecond), markRetryMax)
		}
	})
}

// markRetryMax bounds the wait between two tries of a dead-letter mark.
const markRetryMax = 30 * time.Second

// limitDeliveries refuses a message the broker has delivered MaxDeliveries
// times already: each earlier delivery ended without an acknowledgement,
// so handling it probably kills the worker (out of memory, a crash). The
// refusal is permanent, so it goes straight to the dead-letter queue while
// the other messages keep flowing.
func (c Config) limitDeliveries(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		// Not for a copy of a dead letter: refused, it would be dropped
		// (see deadLetter), and restarts while its mark cannot pass (each
		// returns what the recorder held) count as deliveries.
		if n, err := strconv.Atoi(msg.Metadata.Get(deliveryCountKey)); err == nil && n >= c.MaxDeliveries &&
			message.SubscribeTopicFromCtx(msg.Context()) != DeadLetterCopies {
			return nil, Permanent(fmt.Errorf("delivered %d times without being acknowledged; its worker probably crashed on it (limit MAX_DELIVERIES=%d)", n+1, c.MaxDeliveries))
		}
		return h(msg)
	}
}

// deadLetterPatience bounds how long a dead letter waits for the broker to
// take it (a reconnect) before the message is returned to its queue.
const deadLetterPatience = 30 * time.Second

// publishPatiently retries a publish with backoff while the broker is away,
// rather than returning the message at once: every return counts as a
// delivery towards MaxDeliveries.
func publishPatiently(ctx context.Context, pub message.Publisher, topic string, msg *message.Message) error {
	deadline := time.Now().Add(deadLetterPatience)
	delay := 100 * time.Millisecond
	for {
		err := pub.Publish(topic, msg)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
		delay = min(delay*2, 2*time.Second)
	}
}
