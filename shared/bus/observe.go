package bus

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/photopipe/photopipe/shared/event"
)

// Outcome is how one run of a handler on a message ended.
type Outcome string

// Outcomes of a handler run. A message ends in exactly one of ok,
// permanent_failure, dead_lettered and requeued; each run before that
// ended in retried.
const (
	// OutcomeOK: handled and acknowledged.
	OutcomeOK Outcome = "ok"
	// OutcomePermanentFailure: the photo failed for good (the handler
	// published PhotoFailed) and the message was acknowledged.
	OutcomePermanentFailure Outcome = "permanent_failure"
	// OutcomeRetried: the run failed with a transient error and the message
	// was handled again.
	OutcomeRetried Outcome = "retried"
	// OutcomeDeadLettered: the message went to the service's dead-letter
	// queue (retries used up, a permanent error, or the delivery limit).
	OutcomeDeadLettered Outcome = "dead_lettered"
	// OutcomeRequeued: it went back to its queue: a stop cancelled it (or
	// it came after the stop began), or not even the dead-letter queue
	// took it (the broker is away).
	OutcomeRequeued Outcome = "requeued"
)

// Observer is told how messages were handled (shared/metrics implements
// it). handler is the handler's name without the worker suffix. Its
// methods are called concurrently.
type Observer interface {
	// MessageHandled reports a message's final outcome and how long it took,
	// retries included.
	MessageHandled(handler string, outcome Outcome, elapsed time.Duration)
	// MessageRetried reports a run that failed and is being retried.
	MessageRetried(handler string)
}

// RouterOption adjusts NewRouter.
type RouterOption func(*routerOptions)

type routerOptions struct {
	observer     Observer
	closeTimeout time.Duration
	work         context.Context
}

// WithCloseTimeout bounds how long a closing router waits for the
// handlers still running once their messages are done or returned to
// their queues (default DefaultCloseTimeout).
func WithCloseTimeout(d time.Duration) RouterOption {
	return func(ro *routerOptions) { ro.closeTimeout = d }
}

// WithWorkContext hands every message to its handlers under a context
// that ends when work does, instead of Watermill's, which ends with the
// context the router runs under: a stopping service lets the messages in
// flight finish, and ends work when it no longer waits for them.
func WithWorkContext(work context.Context) RouterOption {
	return func(ro *routerOptions) { ro.work = work }
}

// WithObserver tells o how every message was handled.
func WithObserver(o Observer) RouterOption {
	return func(ro *routerOptions) { ro.observer = o }
}

// handling is what the middleware learns about one message while it is
// handled; it travels in the message's context.
type handling struct {
	runs         atomic.Int32
	photoFailed  atomic.Bool
	deadLettered atomic.Bool
}

type handlingKey struct{}

func handlingOf(ctx context.Context) *handling {
	h, _ := ctx.Value(handlingKey{}).(*handling)
	return h
}

// markPhotoFailed records that the handler published PhotoFailed, called
// by the event bus for every event published from a handler.
func markPhotoFailed(ctx context.Context, eventName string) {
	if eventName != event.TopicPhotoFailed {
		return
	}
	if h := handlingOf(ctx); h != nil {
		h.photoFailed.Store(true)
	}
}

// markDeadLettered records that the message went to the dead-letter queue.
func markDeadLettered(ctx context.Context) {
	if h := handlingOf(ctx); h != nil {
		h.deadLettered.Store(true)
	}
}

// observe times the handling of each message and reports its outcome. It
// runs outside the dead-letter step, so that it sees dead-lettering.
func observe(o Observer) message.HandlerMiddleware {
	return func(next message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			start := time.Now()
			h := &handling{}
			msg.SetContext(context.WithValue(msg.Context(), handlingKey{}, h))
			out, err := next(msg)
			outcome := OutcomeOK
			switch {
			case err != nil:
				outcome = OutcomeRequeued
			case h.deadLettered.Load():
				outcome = OutcomeDeadLettered
			case h.photoFailed.Load():
				outcome = OutcomePermanentFailure
			}
			if o != nil {
				o.MessageHandled(handlerBase(message.HandlerNameFromCtx(msg.Context())), outcome, time.Since(start))
			}
			return out, err
		}
	}
}

// countRuns runs inside Retry: every run after the first is a retry. A
// transient error is logged here, with the photo and correlation ids of
// the message's context (Watermill's own retry log has neither); the
// dead-letter step logs the last one again if retrying gave up.
func countRuns(o Observer, maxRetries int, log *slog.Logger) message.HandlerMiddleware {
	return func(next message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			ctx := msg.Context()
			h := handlingOf(ctx)
			run := 1
			if h != nil {
				run = int(h.runs.Add(1))
				h.photoFailed.Store(false) // this run decides
			}
			if run > 1 && o != nil {
				o.MessageRetried(handlerBase(message.HandlerNameFromCtx(ctx)))
			}
			out, err := next(msg)
			if err != nil && !IsPermanent(err) {
				log.WarnContext(ctx, "handler run failed",
					slog.Int("run", run), slog.Int("max_retries", maxRetries), slog.String("error", err.Error()))
			}
			return out, err
		}
	}
}

// handlerBase drops the "-<n>" AddHandlers gives each worker's copy of a
// handler, so all copies count as one handler.
func handlerBase(name string) string {
	i := strings.LastIndexByte(name, '-')
	if i < 0 {
		return name
	}
	if _, err := strconv.Atoi(name[i+1:]); err != nil {
		return name
	}
	return name[:i]
}
