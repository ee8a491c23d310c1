package worker_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/shared/bus"
	"github.com/photopipe/photopipe/shared/envconfig"
	"github.com/photopipe/photopipe/shared/event"
	"github.com/photopipe/photopipe/shared/testenv"
	"github.com/photopipe/photopipe/shared/worker"
)

// service runs worker.Run for the recorder with handle on PhotoFailed,
// publishes one PhotoFailed and waits until handle has it. It returns the
// health address, the stop (SIGTERM) and Run's result.
func service(t *testing.T, shutdown time.Duration, handle func(context.Context, *event.PhotoFailed) error) (cfg bus.Config, health string, stop func(), done <-chan error) {
	t.Helper()
	cfg = bus.LoadConfig(envconfig.New(func(string) string { return "" }), 1)
	cfg.URL = testenv.RabbitMQ(t)
	cfg.RetryMax = 0
	health, stop, done = serve(t, cfg, cfg.URL, shutdown, func(*cqrs.EventBus) ([]cqrs.EventHandler, error) {
		return []cqrs.EventHandler{cqrs.NewEventHandler("test.failed", handle)}, nil
	})
	return cfg, health, stop, done
}

// serve runs worker.Run for the recorder with handlers, its connections
// to the broker going to serviceURL (cfg.URL, or a proxy of it), publishes
// one PhotoFailed straight to cfg.URL and returns once the service is
// ready.
func serve(t *testing.T, cfg bus.Config, serviceURL string, shutdown time.Duration, handlers func(*cqrs.EventBus) ([]cqrs.EventHandler, error)) (health string, stop func(), done <-chan error) {
	t.Helper()
	direct := cfg.URL
	cfg.URL = serviceURL
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	bound := make(chan string, 1)
	result, finished := make(chan error, 1), make(chan struct{})
	go func() {
		defer close(finished)
		result <- worker.Run(ctx, worker.Options{
			Service: bus.Recorder, Bus: cfg, Workers: 1, HealthAddr: "127.0.0.1:0", HealthBound: bound, Log: log,
			ShutdownTimeout: shutdown, Handlers: handlers,
		})
	}()
	select {
	case health = <-bound:
	case err := <-result:
		t.Fatalf("worker.Run: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-finished:
		case <-time.After(20 * time.Second):
			t.Error("worker.Run did not return")
		}
	})
	require.Eventually(t, func() bool { return get(t, health, "/readyz") == http.StatusOK }, 20*time.Second, 20*time.Millisecond)
	cfg.URL = direct
	pub, err := cfg.NewPublisher(watermill.NopLogger{})
	require.NoError(t, err)
	defer pub.Close()
	events, err := bus.NewEventBus(pub, watermill.NopLogger{})
	require.NoError(t, err)
	require.NoError(t, events.Publish(context.Background(), &event.PhotoFailed{Header: event.NewHeader("p1", 1)}))
	return health, cancel, result
}

func get(t *testing.T, addr, path string) int {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func queueDepth(t *testing.T, url, queue string) int {
	t.Helper()
	ch := testenv.AMQPChannel(t, url)
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, amqp091.Table{})
	require.NoError(t, err)
	return q.Messages
}

// A stop lets the message in flight finish under a live context, while
// /metrics is still served and /readyz says the service is stopping; the
// message is acknowledged and Run returns nil.
func TestStopLetsTheMessageInFlightFinish(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	cancelled := make(chan bool, 1)
	cfg, health, stop, done := service(t, time.Minute, func(ctx context.Context, _ *event.PhotoFailed) error {
		close(started)
		<-release
		cancelled <- ctx.Err() != nil
		return nil
	})
	<-started
	stop()
	require.Eventually(t, func() bool { return get(t, health, "/readyz") == http.StatusServiceUnavailable }, 5*time.Second, 20*time.Millisecond,
		"ready while stopping")
	require.Equal(t, http.StatusOK, get(t, health, "/metrics"), "metrics while the message finishes")
	time.Sleep(200 * time.Millisecond)
	close(release)
	require.False(t, <-cancelled, "the message's context ended with the stop")
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return once the message finished")
	}
	require.Equal(t, 0, queueDepth(t, cfg.URL, cfg.QueueName(event.TopicPhotoFailed, bus.Recorder)), "acknowledged")
}

// Past the shutdown timeout a stop cancels the message's context and
// returns the message to its queue (not to the dead-letter queue), even
// when its handler does not return; Run returns nil a few seconds later.
func TestStopGivesUpAfterTheShutdownTimeout(t *testing.T) {
	const shutdown = 300 * time.Millisecond
	started := make(chan struct{}, 1)
	sawCancel := make(chan time.Time, 1)
	cfg, _, stop, done := service(t, shutdown, func(ctx context.Context, _ *event.PhotoFailed) error {
		select {
		case started <- struct{}{}:
		default:
			return nil // a redelivery, after the test
		}
		<-ctx.Done()
		sawCancel <- time.Now()
		select {} // a handler that never returns
	})
	<-started
	t0 := time.Now()
	stop()
	at := <-sawCancel
	require.GreaterOrEqual(t, at.Sub(t0), shutdown, "cancelled before the shutdown timeout")
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(15 * time.Second):
		t.Fatal("Run waited for a handler that does not return")
	}
	t.Logf("Run returned %s after the stop", time.Since(t0).Round(time.Millisecond))
	require.Equal(t, 0, queueDepth(t, cfg.URL, bus.DeadLetterTopic(bus.Recorder)), "dead-lettered")
	require.Eventually(t, func() bool {
		return queueDepth(t, cfg.URL, cfg.QueueName(event.TopicPhotoFailed, bus.Recorder)) == 1
	}, 5*time.Second, 50*time.Millisecond, "the message is back in its queue")
}

// A stop that gives up on a handler stuck in a publish the broker never
// confirms (a broker under a resource alarm blocks its publishers and
// keeps their connections alive) still ends: closing the publisher waits
// for its publishes in flight, and Run waits for that no longer than for
// the router. Here the network to the broker freezes under the publish.
func TestStopGivesUpOnAPublishThatIsNeverConfirmed(t *testing.T) {
	cfg := bus.LoadConfig(envconfig.New(func(string) string { return "" }), 1)
	cfg.URL = testenv.RabbitMQ(t)
	cfg.RetryMax = 0
	proxy := newFreezer(t, cfg.URL)
	publishing := make(chan struct{}, 1)
	_, stop, done := serve(t, cfg, proxy.url, 300*time.Millisecond, func(events *cqrs.EventBus) ([]cqrs.EventHandler, error) {
		return []cqrs.EventHandler{cqrs.NewEventHandler("test.failed", func(ctx context.Context, e *event.PhotoFailed) error {
			if e.PhotoID != "p1" {
				return nil
			}
			// The first publish declares the topic's exchange; the
			// second waits for its confirm.
			if err := events.Publish(ctx, &event.PhotoFailed{Header: event.NewHeader("p2", 1)}); err != nil {
				return err
			}
			proxy.freeze()
			publishing <- struct{}{}
			return events.Publish(ctx, &event.PhotoFailed{Header: event.NewHeader("p3", 1)})
		})}, nil
	})
	<-publishing
	t0 := time.Now()
	stop()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(12 * time.Second): // about 6 s: the shutdown timeout, then 2 s for each wait
		t.Fatal("Run waited for a publish the broker never confirms")
	}
	t.Logf("Run returned %s after the stop", time.Since(t0).Round(time.Millisecond))
}

// freezer is a TCP proxy to a broker whose connections can be frozen:
// they stay open, and nothing more passes either way.
type freezer struct {
	url    string
	frozen chan struct{}
	once   sync.Once
}

func newFreezer(t *testing.T, brokerURL string) *freezer {
	t.Helper()
	u, err := url.Parse(brokerURL)
	require.NoError(t, err)
	broker := u.Host
	if u.Port() == "" {
		broker = net.JoinHostPort(u.Hostname(), "5672")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f := &freezer{frozen: make(chan struct{})}
	closed := make(chan struct{})
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		close(closed)
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				select {
				case <-f.frozen:
					<-closed // held until the test ends
					return
				default:
				}
				if _, err := dst.Write(buf[:n]); err != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", broker)
			if err != nil {
				_ = c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, b)
			mu.Unlock()
			go pipe(b, c)
			go pipe(c, b)
		}
	}()
	u.Host = ln.Addr().String()
	f.url = u.String()
	return f
}

func (f *freezer) freeze() { f.once.Do(func() { close(f.frozen) }) }
