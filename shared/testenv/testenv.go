// Package testenv gives integration tests their own Postgres database and
// RabbitMQ virtual host on the local servers, starting the servers when they
// are installed but stopped, so that test packages running in parallel
// never share state.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	amqp091 "github.com/rabbitmq/amqp091-go"
)

// Admin URLs of the local servers; PHOTOPIPE_TEST_PG and PHOTOPIPE_TEST_AMQP
// override them.
var (
	pgAdminURL   = envOr("PHOTOPIPE_TEST_PG", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	amqpAdminURL = envOr("PHOTOPIPE_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/")
)

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// Name returns a short random name with prefix, safe for databases and vhosts.
func Name(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

var (
	pgOnce, mqOnce sync.Once
	pgErr, mqErr   error
)

// Postgres creates an empty database for the test and returns its URL; the
// database is dropped when the test ends. It skips under -short.
func Postgres(tb testing.TB) string {
	tb.Helper()
	if testing.Short() {
		tb.Skip("needs PostgreSQL; skipped under -short")
	}
	pgOnce.Do(func() { pgErr = ensure(pingPostgres, startPostgres) })
	if pgErr != nil {
		tb.Fatalf("PostgreSQL at %s: %v", pgAdminURL, pgErr)
	}
	name := Name("pp_test_")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgAdminURL)
	if err != nil {
		tb.Fatalf("connect to PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("create database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, pgAdminURL)
		if err != nil {
			tb.Logf("drop database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Logf("drop database %s: %v", name, err)
		}
	})
	u, _ := url.Parse(pgAdminURL)
	u.Path = "/" + name
	return u.String()
}

// RabbitMQ creates an empty virtual host for the test and returns an AMQP URL
// for it; the vhost is deleted when the test ends. It skips under -short.
func RabbitMQ(tb testing.TB) string {
	tb.Helper()
	if testing.Short() {
		tb.Skip("needs RabbitMQ; skipped under -short")
	}
	mqOnce.Do(func() { mqErr = ensure(pingRabbitMQ, startRabbitMQ) })
	if mqErr != nil {
		tb.Fatalf("RabbitMQ at %s: %v", amqpAdminURL, mqErr)
	}
	vhost := Name("pp_test_")
	user := "guest"
	if u, err := amqp091.ParseURI(amqpAdminURL); err == nil {
		user = u.Username
	}
	if err := mgmt.createVhost(vhost, user); err != nil {
		tb.Fatalf("create vhost: %v", err)
	}
	tb.Cleanup(func() {
		if err := mgmt.deleteVhost(vhost); err != nil {
			tb.Logf("delete vhost %s: %v", vhost, err)
		}
	})
	return VhostURL(amqpAdminURL, vhost)
}

// AMQPChannel opens a connection to the broker at url and a channel on it,
// for a test to look at queues directly; the connection is closed when the
// test ends.
func AMQPChannel(tb testing.TB, url string) *amqp091.Channel {
	tb.Helper()
	conn, err := amqp091.Dial(url)
	if err != nil {
		tb.Fatalf("connect to %s: %v", url, err)
	}
	tb.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		tb.Fatalf("open a channel: %v", err)
	}
	return ch
}

// VhostURL returns base with its virtual host replaced by vhost.
func VhostURL(base, vhost string) string {
	u, err := url.Parse(base)
	if err != nil {
		return base
	}
	u.Path = "/" + url.PathEscape(vhost)
	u.RawPath = ""
	return u.String()
}

// RabbitMQCtl runs rabbitmqctl with args and returns its combined output.
func RabbitMQCtl(args ...string) (string, error) {
	return rabbitmqctl(args...)
}

func rabbitmqctl(args ...string) (string, error) {
	return rabbitmqctlBin("rabbitmqctl", args...)
}

func rabbitmqctlBin(bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	return string(out), err
}

// ensure pings a server and, when it does not answer, starts it and waits.
func ensure(ping func() error, start func() error) error {
	if ping() == nil {
		return nil
	}
	if err := start(); err != nil {
		return fmt.Errorf("not reachable and could not be started: %w", err)
	}
	deadline := time.Now().Add(90 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if err = ping(); err == nil {
			return nil
		}
		time.Sleep(500 * time.Millisecond)
	}
	return fmt.Errorf("started but still not reachable: %w", err)
}

func pingPostgres() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgAdminURL)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

func pingRabbitMQ() error {
	conn, err := amqp091.DialConfig(amqpAdminURL, amqp091.Config{Dial: amqp091.DefaultDial(5 * time.Second)})
	if err != nil {
		return err
	}
	return conn.Close()
}

func startPostgres() error {
	versions, _ := filepath.Glob("/etc/postgresql/*")
	if len(versions) == 0 {
		return fmt.Errorf("PostgreSQL is not installed (no /etc/postgresql); install it with apt-get install postgresql")
	}
	out, err := exec.Command("pg_ctlcluster", "--skip-systemctl-redirect", filepath.Base(versions[0]), "main", "start").CombinedOutput()
	if err != nil && !strings.Contains(string(out), "already running") {
		return fmt.Errorf("pg_ctlcluster: %w: %s", err, out)
	}
	return nil
}

func startRabbitMQ() error {
	if _, err := exec.LookPath("rabbitmq-server"); err != nil {
		return fmt.Errorf("RabbitMQ is not installed; install it with apt-get install rabbitmq-server")
	}
	out, err := exec.Command("rabbitmq-server", "-detached").CombinedOutput()
	if err != nil {
		return fmt.Errorf("rabbitmq-server -detached: %w: %s", err, out)
	}
	return nil
}

// QueuePolicy applies a policy named name with definition (JSON) to queue
// on the broker at amqpURL and returns once the queue has it (the broker
// applies policies asynchronously); the returned func removes it and
// returns once the queue is without it.
func QueuePolicy(tb testing.TB, amqpURL, queue, name, definition string) func() {
	tb.Helper()
	uri, err := amqp091.ParseURI(amqpURL)
	if err != nil {
		tb.Fatalf("parse %s: %v", amqpURL, err)
	}
	wait := func(policy string) {
		tb.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			out, err := rabbitmqctl("list_queues", "-q", "-p", uri.Vhost, "name", "policy")
			if err == nil && slices.Contains(strings.Split(out, "\n"), queue+"\t"+policy) {
				return
			}
			if time.Now().After(deadline) {
				tb.Fatalf("queue %s without policy %q within 30 s: %v: %s", queue, policy, err, out)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if out, err := rabbitmqctl("set_policy", "-p", uri.Vhost, "--apply-to", "queues", name, "^"+regexp.QuoteMeta(queue)+"$", definition); err != nil {
		tb.Fatalf("set policy: %v: %s", err, out)
	}
	wait(name)
	return func() {
		tb.Helper()
		if out, err := rabbitmqctl("clear_policy", "-p", uri.Vhost, name); err != nil {
			tb.Fatalf("clear policy: %v: %s", err, out)
		}
		wait("")
	}
}

// RunUntilCleanup runs run in the background until the test ends, then
// cancels its context and requires it to return nil within a minute (a
// service's run function: it stops taking work and drains). It returns the
// context run got, for the test's own calls.
func RunUntilCleanup(tb testing.TB, run func(ctx context.Context) error) context.Context {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("run returned: %v", err)
			}
		case <-time.After(time.Minute):
			tb.Error("run did not return within a minute of its context's end")
		}
	})
	return ctx
}
