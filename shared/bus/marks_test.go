package bus_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
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

	// Nothing to mark: no photo, a queue that is not a subscription's.
	for _, m := range []*message.Message{
		copyOf(t, map[string]string{"x": "y"}, map[string]string{"x-first-death-reason": "maxlen", "x-first-death-queue": "photo-processor"}),
		copyOf(t, requested, map[string]string{"x-first-death-reason": "expired", "x-first-death-queue": "somebody-elses"}),
		copyOf(t, requested, map[string]string{"name": "SomethingElse"}),
		message.NewMessage("m", []byte("not json")),
	} {
		_, ok := cfg.DeadLetterMark(m)
		assert.False(t, ok, "%s %v", m.Payload, m.Metadata)
	}
}

// The broker's own dead letters reach the recorder's marks through the
// copies queue, with the reasons the dead-letter listing gives; a
// service's dead letter does not (it is announced), and the dead letters
// themselves stay in the dead-letter queues.
func TestBrokerDeadLettersAreMarked(t *testing.T) {
	cfg := testConfig(t)
	marks := make(chan *event.PhotoDeadLettered, 10)
	events := runRouterMarking(t, cfg, bus.Recorder, func(_ context.Context, e *event.PhotoFailed) error {
		return bus.Permanent(assert.AnError) // the service's own dead letter
	}, func(_ context.Context, e *event.PhotoDeadLettered) error {
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

	require.NoError(t, cfg.Declare(context.Background(), nil))
	testenv.QueuePolicy(t, cfg.URL, cfg.PhotoProcessorQueue, "limit", `{"max-length":1}`)
	publishRequested(t, cfg, "first")
	publishRequested(t, cfg, "second")
	e = next()
	assert.Equal(t, "first", e.PhotoID)
	assert.Equal(t, bus.Downloader, e.Service)
	assert.Equal(t, "dropped by the broker from queue photo-processor: the queue was full (a max-length limit)", e.Reason)

	require.NoError(t, events.Publish(context.Background(), &event.PhotoFailed{Header: event.NewHeader("poison", 1)}))
	dl := getDeadLetter(t, cfg.URL, bus.Recorder)
	assert.Contains(t, string(dl.body), "poison")
	select {
	case e := <-marks:
		t.Fatalf("a service's dead letter marked from its copy: %+v", e)
	case <-time.After(300 * time.Millisecond):
	}
	assert.Equal(t, 2, queueDepth(t, cfg.URL, bus.DeadLetterTopic(bus.Downloader)), "the dead letters stay")
	assert.Zero(t, queueDepth(t, cfg.URL, cfg.QueueName(bus.DeadLetterCopies, bus.Recorder)), "every copy consumed")
}
