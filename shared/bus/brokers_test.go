package bus

import (
	"net"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/shared/envconfig"
	"github.com/photopipe/photopipe/shared/event"
	"github.com/photopipe/photopipe/shared/testenv"
)

func TestBrokerURLs(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, raw string
		hosts     []string // host:port of each node, nil for an error
		wantErr   string
	}{
		{"one URL", "amqp://guest:guest@rabbit:5672/", []string{"rabbit:5672"}, ""},
		{"mixed schemes", "amqp://u:p@a, amqps://u:p@b", nil, "share scheme"},
		{"a cluster", " amqp://u:p@a:5672/v , amqp://u:p@b:5673/v,amqp://u:p@c/v ", []string{"a:5672", "b:5673", "c:5672"}, ""},
		{"tls cluster", "amqps://u:p@a/v,amqps://u:p@b/v", []string{"a:5671", "b:5671"}, ""},
		{"different users", "amqp://u:p@a/,amqp://x:p@b/", nil, "share scheme, user"},
		{"different vhosts", "amqp://u:p@a/one,amqp://u:p@b/two", nil, "virtual host"},
		{"not amqp", "http://rabbit", nil, "URL 1 is not an amqp://"},
		{"second not amqp", "amqp://a,rabbit:5672", nil, "URL 2 is not"},
		{"empty", " , ", nil, "no broker URL"},
		{"tls files in a list", "amqps://u:p@a/?cacertfile=/ca.pem,amqps://u:p@b/?cacertfile=/ca.pem", nil, "single URL only"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			nodes, err := brokerURLs(tc.raw)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				require.NotContains(t, err.Error(), ":p@", "passwords stay out of messages")
				return
			}
			require.NoError(t, err)
			var hosts []string
			for _, n := range nodes {
				hosts = append(hosts, net.JoinHostPort(n.uri.Host, strconv.Itoa(n.uri.Port)))
			}
			require.Equal(t, tc.hosts, hosts)
		})
	}
}

func TestValidateAcceptsBrokerLists(t *testing.T) {
	t.Parallel()
	load := func(amqpURL string) error {
		return LoadConfig(envconfig.New(func(k string) string {
			return map[string]string{"AMQP_URL": amqpURL}[k]
		}), 1).Validate()
	}
	require.NoError(t, load("amqp://u:p@rabbit-0:5672/,amqp://u:p@rabbit-1:5672/,amqp://u:p@rabbit-2:5672/"))
	err := load("amqp://u:secret@a/,amqp://v:secret@b/")
	require.ErrorContains(t, err, "AMQP_URL: ")
	require.NotContains(t, err.Error(), "secret")
	require.Equal(t, "amqp://u:xxxxx@a/,amqp://u:xxxxx@b/", redactAll("amqp://u:s@a/, amqp://u:s@b/"))
}

// listener accepts connections on loopback and counts them.
func listener(t *testing.T) (addr string, accepted <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	ch := make(chan struct{}, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
			ch <- struct{}{}
		}
	}()
	return ln.Addr().String(), ch
}

// deadAddr is a loopback address where nothing listens.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func TestNodeDialerSkipsDeadNodesAndRotates(t *testing.T) {
	t.Parallel()
	dead := deadAddr(t)
	a, atA := listener(t)
	b, atB := listener(t)
	nodes, err := brokerURLs("amqp://u:p@" + dead + "/,amqp://u:p@" + a + "/,amqp://u:p@" + b + "/")
	require.NoError(t, err)
	d := &nodeDialer{nodes: nodes}
	wait := func(ch <-chan struct{}, name string) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatalf("no connection reached %s", name)
		}
	}
	// The first dial starts at the dead node and goes on to A.
	conn, err := d.dial("tcp", "ignored:1")
	require.NoError(t, err)
	require.Equal(t, a, conn.RemoteAddr().String())
	_ = conn.Close()
	wait(atA, "A")
	// A reconnect starts one node further, at A.
	conn, err = d.dial("tcp", "ignored:1")
	require.NoError(t, err)
	require.Equal(t, a, conn.RemoteAddr().String())
	_ = conn.Close()
	wait(atA, "A")
	// The next starts at B, so a node that accepts TCP but fails AMQP is not retried forever.
	conn, err = d.dial("tcp", "ignored:1")
	require.NoError(t, err)
	require.Equal(t, b, conn.RemoteAddr().String())
	_ = conn.Close()
	wait(atB, "B")

	d = &nodeDialer{nodes: nodes[:1]}
	_, err = d.dial("tcp", "ignored:1")
	require.ErrorContains(t, err, dead)
}

// TestBrokerListEndToEnd points AMQP_URL at a dead node followed by the
// real broker: the topology, the publisher and the subscriber all get
// through.
func TestBrokerListEndToEnd(t *testing.T) {
	t.Parallel()
	real := testenv.RabbitMQ(t)
	u, err := url.Parse(real)
	require.NoError(t, err)
	u.Host = deadAddr(t)
	cfg := LoadConfig(envconfig.New(func(string) string { return "" }), 4)
	cfg.URL = u.String() + "," + real
	cfg.ConnectTimeout = 10 * time.Second
	require.NoError(t, cfg.Validate())

	ctx := t.Context()
	require.NoError(t, cfg.Declare(ctx, nil))
	logger := watermill.NopLogger{}
	pub, err := cfg.NewPublisher(logger)
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })
	sub, err := cfg.NewSubscriber(Downloader, logger)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })
	msgs, err := sub.Subscribe(ctx, event.TopicPhotoRequested)
	require.NoError(t, err)

	require.NoError(t, pub.Publish(event.TopicPhotoRequested, message.NewMessage(watermill.NewUUID(), []byte(`{"hello":1}`))))
	select {
	case m := <-msgs:
		require.JSONEq(t, `{"hello":1}`, string(m.Payload))
		m.Ack()
	case <-time.After(20 * time.Second):
		t.Fatal("the message published through the broker list never arrived")
	}
}

// Dial keeps to its timeout even against a broker that accepts the
// connection and never answers (overloaded, or not AMQP): each attempt
// ends by the deadline, not after the library's 30 s.
func TestDialTimeoutBoundsASilentBroker(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			defer conn.Close() // held open, silent
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	for _, url := range []string{
		"amqp://guest:guest@127.0.0.1:" + strconv.Itoa(port) + "/",
		"amqp://guest:guest@127.0.0.1:" + strconv.Itoa(port) + "/,amqp://guest:guest@127.0.0.1:" + strconv.Itoa(port) + "/",
	} {
		start := time.Now()
		_, err := Dial(t.Context(), url, time.Second)
		require.Error(t, err)
		require.Less(t, time.Since(start), 3*time.Second, "%s: %v", url, err)
	}
}
