package bus_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/shared/bus"
	"github.com/photopipe/photopipe/shared/envconfig"
	"github.com/photopipe/photopipe/shared/event"
	"github.com/photopipe/photopipe/shared/testenv"
)

// copyOf is a dead letter's copy as the recorder receives it: payload and
// metadata (the broker's headers as strings).
func copyOf(t *testing.T, payload any, meta map[string]string) *message.Message {
	t.Helper()
	b, err := json.Marshal(payload)
	require.NoError(t, err)
	msg := message.NewMessage("m", b)
	for k, v := range meta {
		msg.Metadata.Set(k, v)
	}
	return msg
}

func TestDeadLetterMark(t *testing.T) {
	t.Parallel()
	cfg := bus.LoadConfig(envconfig.New(func(string) string { return "" }), 1)
	requested := &event.PhotoRequested{Header: event.NewHeader("p1", 3)}

	// The broker pushed it out of a full queue.
	e, ok := cfg.DeadLetterMark(copyOf(t, requested, map[string]string{
		"x-first-death-reason": "maxlen", "x-first-death-queue": "photo-processor", "name": "PhotoRequested",
	}))
	require.True(t, ok)
	assert.Equal(t, "p1", e.PhotoID)
	assert.Equal(t, 3, e.Attempt)
	assert.Equal(t, event.SchemaVersion, e.Version)
	assert.NotEmpty(t, e.EventID)
	assert.Equal(t, bus.Downloader, e.Service)
	assert.Equal(t, "photo-processor", e.Queue)
	assert.Equal(t, event.TopicPhotoRequested, e.Topic)
	assert.Equal(t, "dropped by the broker from queue photo-processor: the queue was full (a max-length limit)", e.Reason)

	// No queue was bound to its exchange: its name says which.
	e, ok = cfg.DeadLetterMark(copyOf(t, &event.ThumbnailCreated{Header: event.NewHeader("p2", 1)}, map[string]string{"name": "ThumbnailCreated"}))
	require.True(t, ok)
	assert.Equal(t, bus.Recorder, e.Service)
	assert.Equal(t, "ThumbnailCreated_recorder", e.Queue)
	assert.Contains(t, e.Reason, "unroutable: no queue was bound to exchange ThumbnailCreated")

	// A service's own dead letter was announced when it was made.
	_, ok = cfg.DeadLetterMark(copyOf(t, requested, map[string]string{
		bus.ReasonKey: "boom", bus.TopicKey: "PhotoRequested", "name": "PhotoRequested",
	}))
	assert.False(t, ok)

	// An announcement the recorder could not record is recorded from its
	// copy.
	notice := &event.PhotoDeadLettered{Header: event.NewHeader("p3", 2), Service: bus.Resizer,
		Queue: "PhotoDownloaded_resizer", Topic: "PhotoDownloaded", Reason: "storage down"}
	e, ok = cfg.DeadLetterMark(copyOf(t, notice, map[string]string{
		bus.ReasonKey: "database down", bus.TopicKey: event.TopicPhotoDeadLettered, "name": "PhotoDeadLettered",
	}))
	require.True(t, ok)
	assert.Equal(t, notice, e)
	// So is one the broker dropped from the recorder's queue.
	e, ok = cfg.DeadLetterMark(copyOf(t, notice, map[string]string{
		"x-first-death-reason": "maxlen", "x-first-death-queue": "PhotoDeadLettered_recorder", "name": "PhotoDeadLettered",
	}))
	require.True(t, ok)
	assert.Equal(t, notice, e)

	// Nothing to mark: no photo, a queue that is not a subscription's.
	for _, m := range []*message.Message{
		copyOf(t, map[string]string{"x": "y"}, map[string]string{"x-first-death-reason": "maxlen", "x-first-death-queue": "photo-processor"}),
		copyOf(t, requested, map[string]string{"x-first-death-reason": "expired", "x-first-death-queue": "somebody-elses"}),
		copyOf(t, requested, map[string]string{"name": "SomethingElse"}),
		copyOf(t, requested, map[string]string{bus.ReasonKey: "x", bus.TopicKey: bus.DeadLetterCopies, "name": "PhotoRequested"}),
		message.NewMessage("m", []byte("not json")),
	} {
		_, ok := cfg.DeadLetterMark(m)
		assert.False(t, ok, "%s %v", m.Payload, m.Metadata)
	}
}

// The broker's own dead letters reach the recorder's marks through the
// copies queue, with the reasons the dead-letter listing gives; a
// service's dead letter does not (it is announced). A mark that fails is
// tried again until it passes, one refused for good is dropped, and a copy
// is never dead-lettered or announced; the dead letters themselves stay in
// the dead-letter queues.
func TestBrokerDeadLettersAreMarked(t *testing.T) {
	cfg := testConfig(t)
	marks := make(chan *event.PhotoDeadLettered, 10)
	var flaky atomic.Int32
	events := runRouterMarking(t, cfg, bus.Recorder, func(_ context.Context, e *event.PhotoFailed) error {
		return bus.Permanent(assert.AnError) // the service's own dead letter
	}, func(_ context.Context, e *event.PhotoDeadLettered) error {
		switch e.PhotoID {
		case "flaky":
			if flaky.Add(1) < 6 { // more than RETRY_MAX (2) retries
				return errors.New("database away")
			}
		case "refused":
			return bus.Permanent(errors.New("not a photo id"))
		}
		marks <- e
		return nil
	})
	next := func() *event.PhotoDeadLettered {
		t.Helper()
		select {
		case e := <-marks:
			return e
		case <-time.After(10 * time.Second):
			t.Fatal("no mark")
			return nil
		}
	}
	ch := testenv.AMQPChannel(t, cfg.URL)

	_, err := ch.QueueDelete(cfg.PhotoProcessorQueue, false, false, false)
	require.NoError(t, err)
	publishRequested(t, cfg, "unroutable")
	e := next()
	assert.Equal(t, "unroutable", e.PhotoID)
	assert.Equal(t, bus.Downloader, e.Service)
	assert.Equal(t, cfg.PhotoProcessorQueue, e.Queue)
	assert.Contains(t, e.Reason, "unroutable")

	// The service's own dead letter first, so that its copy is consumed
	// before the broker's below (one queue, one consumer).
	require.NoError(t, events.Publish(context.Background(), &event.PhotoFailed{Header: event.NewHeader("poison", 1)}))
	dl := getDeadLetter(t, cfg.URL, bus.Recorder)
	assert.Contains(t, string(dl.body), "poison")

	require.NoError(t, cfg.Declare(context.Background(), nil))
	testenv.QueuePolicy(t, cfg.URL, cfg.PhotoProcessorQueue, "limit", `{"max-length":1}`)
	// Each pushes the one before it out.
	for _, id := range []string{"first", "flaky", "refused", "sentinel", "last"} {
		publishRequested(t, cfg, id)
	}
	e = next()
	assert.Equal(t, "first", e.PhotoID)
	assert.Equal(t, bus.Downloader, e.Service)
	assert.Equal(t, "dropped by the broker from queue photo-processor: the queue was full (a max-length limit)", e.Reason)
	assert.Equal(t, "flaky", next().PhotoID, "marked once the database is back")
	assert.EqualValues(t, 6, flaky.Load())
	assert.Equal(t, "sentinel", next().PhotoID, "the service's dead letter and the refused mark gave no mark")

	// A copy delivered more than MaxDeliveries times (restarts while its
	// mark could not pass) is still marked, not dropped.
	require.NoError(t, ch.PublishWithContext(context.Background(), bus.DeadLetterTopic(bus.Downloader), "", false, false, amqp091.Publishing{
		Headers: amqp091.Table{"x-first-death-reason": "maxlen", "x-first-death-queue": cfg.PhotoProcessorQueue,
			"x-delivery-count": int32(cfg.MaxDeliveries + 5), "name": event.TopicPhotoRequested},
		Body: []byte(`{"photo_id":"tired","attempt":1}`),
	}))
	assert.Equal(t, "tired", next().PhotoID)

	// The copy and the dead letter are two quorum queues, each committing
	// on its own: the copy's mark can come before the other counts it.
	assert.Eventually(t, func() bool { return queueDepth(t, cfg.URL, bus.DeadLetterTopic(bus.Downloader)) == 6 },
		5*time.Second, 20*time.Millisecond, "the dead letters stay")
	assert.Zero(t, queueDepth(t, cfg.URL, bus.DeadLetterTopic(bus.Recorder)), "no copy was dead-lettered")
	assert.Equal(t, 1, queueDepth(t, cfg.URL, cfg.QueueName(event.TopicPhotoDeadLettered, bus.Recorder)),
		"only the service's dead letter was announced")
}

// A mark that hangs (a database that takes connections but not writes)
// does not hold the service's stop: the copy goes back to its queue.
func TestAHangingMarkDoesNotHoldAStop(t *testing.T) {
	cfg := testConfig(t)
	release := make(chan struct{})
	time.AfterFunc(8*time.Second, func() { close(release) }) // hung until long after the stop
	var stopping time.Time
	t.Cleanup(func() { // runs last: after the router stopped
		assert.Less(t, time.Since(stopping), 4*time.Second, "the router stopped while the mark hung")
	})
	hanging := make(chan struct{}, 1)
	runRouterMarking(t, cfg, bus.Recorder, func(context.Context, *event.PhotoFailed) error { return nil },
		func(context.Context, *event.PhotoDeadLettered) error {
			hanging <- struct{}{}
			<-release
			return nil
		})
	t.Cleanup(func() { stopping = time.Now() }) // runs first: before the router stops
	ch := testenv.AMQPChannel(t, cfg.URL)
	_, err := ch.QueueDelete(cfg.PhotoProcessorQueue, false, false, false)
	require.NoError(t, err)
	publishRequested(t, cfg, "unroutable")
	select {
	case <-hanging:
	case <-time.After(10 * time.Second):
		t.Fatal("no mark tried")
	}
}
