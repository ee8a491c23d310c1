package bus

import (
	"context"
	"fmt"
	"sync"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// QueueDepth counts the messages waiting in queues (a passive declare)
// over a connection of its own, opened at the first count and again after
// it breaks. It is safe for concurrent use.
type QueueDepth struct {
	url  string
	mu   sync.Mutex
	conn *amqp091.Connection
	ch   *amqp091.Channel
}

// NewQueueDepth returns a QueueDepth for the broker of c; it connects when
// first asked.
func (c Config) NewQueueDepth() *QueueDepth {
	return &QueueDepth{url: c.URL}
}

// Depth returns how many messages wait in queue, ready for delivery (not
// those delivered and not yet acknowledged).
func (q *QueueDepth) Depth(ctx context.Context, queue string) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.conn == nil || q.conn.IsClosed() {
		conn, err := Dial(ctx, q.url, 2*time.Second)
		if err != nil {
			return 0, err
		}
		q.conn, q.ch = conn, nil
	}
	if q.ch == nil || q.ch.IsClosed() {
		ch, err := q.conn.Channel()
		if err != nil {
			_ = q.conn.Close()
			q.conn = nil
			return 0, fmt.Errorf("open channel: %w", err)
		}
		q.ch = ch
	}
	// A missing queue closes the channel (404); the next count opens
	// another.
	info, err := q.ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		return 0, fmt.Errorf("inspect queue %s: %w", queue, err)
	}
	return info.Messages, nil
}

// Close closes the connection, if open.
func (q *QueueDepth) Close() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.conn == nil {
		return nil
	}
	err := q.conn.Close()
	q.conn, q.ch = nil, nil
	return err
}
