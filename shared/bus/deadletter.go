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

// limitDeliveries refuses a message the broker has delivered MaxDeliveries
// times already: each earlier delivery ended without an acknowledgement,
// so handling it probably kills the worker (out of memory, a crash). The
// refusal is permanent, so it goes straight to the dead-letter queue while
// the other messages keep flowing.
func (c Config) limitDeliveries(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		if n, err := strconv.Atoi(msg.Metadata.Get(deliveryCountKey)); err == nil && n >= c.MaxDeliveries {
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
