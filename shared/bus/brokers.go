package bus

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// AMQP_URL holds one broker URL, a load-balanced address, or several URLs
// separated by commas: the nodes of one RabbitMQ cluster, tried in order.
// The nodes of a list must share scheme, credentials and virtual host.

// nodeDialTimeout bounds the TCP connect to one node of a list, so a node
// that is down costs seconds, not the library's 30 s, before the next.
const nodeDialTimeout = 5 * time.Second

// node is one broker URL of AMQP_URL, as written and parsed.
type node struct {
	raw string
	uri amqp091.URI
}

// brokerURLs splits and checks AMQP_URL.
func brokerURLs(raw string) ([]node, error) {
	var nodes []node
	for _, part := range strings.Split(raw, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		u, err := amqp091.ParseURI(part)
		if err != nil {
			return nil, fmt.Errorf("URL %d is not an amqp:// or amqps:// URL: %w", len(nodes)+1, err)
		}
		nodes = append(nodes, node{raw: part, uri: u})
	}
	if len(nodes) == 0 {
		return nil, errors.New("no broker URL")
	}
	first := nodes[0].uri
	for _, n := range nodes[1:] {
		u := n.uri
		if u.Scheme != first.Scheme || u.Username != first.Username || u.Password != first.Password || u.Vhost != first.Vhost {
			return nil, errors.New("the URLs of a list must share scheme, user, password and virtual host (they are the nodes of one cluster)")
		}
	}
	if len(nodes) > 1 && (first.CACertFile != "" || first.CertFile != "" || first.KeyFile != "") {
		return nil, errors.New("cacertfile, certfile and keyfile work with a single URL only; use one load-balanced address")
	}
	return nodes, nil
}

// dialFirst connects to the first node of raw that completes the AMQP
// handshake, trying them in order, all by deadline (connect and handshakes;
// the library's own bound is 30 s a node).
func dialFirst(raw string, deadline time.Time) (*amqp091.Connection, error) {
	nodes, err := brokerURLs(raw)
	if err != nil {
		return nil, err
	}
	left := func(most time.Duration) time.Duration {
		if t := nodes[0].uri.ConnectionTimeout; t > 0 { // ?connection_timeout= (ms)
			most = min(most, time.Duration(t)*time.Millisecond)
		}
		return min(max(time.Until(deadline), time.Millisecond), most)
	}
	if len(nodes) == 1 {
		return amqp091.DialConfig(nodes[0].raw, amqp091.Config{Dial: amqp091.DefaultDial(left(30 * time.Second))})
	}
	var errs []error
	for _, n := range nodes {
		conn, err := amqp091.DialConfig(n.raw, amqp091.Config{Dial: amqp091.DefaultDial(left(nodeDialTimeout))})
		if err == nil {
			return conn, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", net.JoinHostPort(n.uri.Host, strconv.Itoa(n.uri.Port)), err))
	}
	return nil, errors.Join(errs...)
}

// connectionConfig returns what watermill-amqp dials with. One URL is
// dialled as it is. For a list, watermill still takes one URL (the first:
// credentials, vhost, heartbeat), so the list lives in a Dial function that
// opens the TCP (and TLS) connection to the first node that accepts it.
// Each later dial (watermill's reconnect) starts one node further, so a
// node that accepts connections but fails the AMQP handshake is not retried
// forever.
func connectionConfig(raw string) (string, *amqp091.Config) {
	nodes, err := brokerURLs(raw)
	if err != nil || len(nodes) == 1 {
		return strings.TrimSpace(raw), nil // Validate reports a bad URL
	}
	d := &nodeDialer{nodes: nodes}
	// TLS, when asked for, is done by d per node with that node's name.
	first := nodes[0].raw
	if strings.HasPrefix(strings.ToLower(first), "amqps://") {
		first = "amqp://" + first[len("amqps://"):]
	}
	return first, &amqp091.Config{Dial: d.dial}
}

type nodeDialer struct {
	nodes []node
	mu    sync.Mutex
	next  int
}

func (d *nodeDialer) dial(network, _ string) (net.Conn, error) {
	d.mu.Lock()
	start := d.next
	d.next = (d.next + 1) % len(d.nodes)
	d.mu.Unlock()
	var errs []error
	for i := range d.nodes {
		conn, err := dialNode(network, d.nodes[(start+i)%len(d.nodes)].uri)
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

func dialNode(network string, u amqp091.URI) (net.Conn, error) {
	addr := net.JoinHostPort(u.Host, strconv.Itoa(u.Port))
	conn, err := net.DialTimeout(network, addr, nodeDialTimeout)
	if err != nil {
		return nil, err
	}
	// As amqp091's own dialer: a deadline for the TLS and AMQP handshakes,
	// cleared by the library once the connection is open.
	if err := conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	if u.Scheme != "amqps" {
		return conn, nil
	}
	name := u.ServerName
	if name == "" {
		name = u.Host
	}
	tc := tls.Client(conn, &tls.Config{ServerName: name, MinVersion: tls.VersionTLS12})
	if err := tc.Handshake(); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("%s: TLS: %w", addr, err)
	}
	return tc, nil
}

// redactAll hides the passwords of every URL in raw.
func redactAll(raw string) string {
	var out []string
	for _, part := range strings.Split(raw, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, redact(part))
		}
	}
	return strings.Join(out, ",")
}
