package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/shared/testenv"
)

// binDir holds the service binaries built once by TestMain, the same way
// make build and the Dockerfiles build them.
var binDir string

func TestMain(m *testing.M) {
	flag.Parse()
	code := func() int {
		if testing.Short() {
			return m.Run()
		}
		dir, err := os.MkdirTemp("", "photopipe-e2e-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		root, err := filepath.Abs("../..")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		for _, svc := range []string{"ingest-api", "downloader", "resizer", "recorder"} {
			cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(dir, svc), "./services/"+svc)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "build %s: %v\n%s", svc, err, out)
				return 1
			}
		}
		binDir = dir
		return m.Run()
	}()
	os.Exit(code)
}

// proc is one running service process.
type proc struct {
	name   string
	cmd    *exec.Cmd
	health string
	mu     sync.Mutex
	out    bytes.Buffer
	done   chan struct{}
	err    error
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

// Output returns what the process printed so far.
func (p *proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// CountLines counts output lines containing every one of subs.
func (p *proc) CountLines(subs ...string) int {
	n := 0
	sc := bufio.NewScanner(strings.NewReader(p.Output()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
next:
	for sc.Scan() {
		for _, s := range subs {
			if !strings.Contains(sc.Text(), s) {
				continue next
			}
		}
		n++
	}
	return n
}

// Stop sends SIGTERM and waits for the process to exit.
func (p *proc) Stop(tb testing.TB) {
	tb.Helper()
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(40 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		tb.Errorf("%s did not stop within 40 s of SIGTERM", p.name)
	}
}

// Env is the environment shared by a pipeline's processes.
type Env struct {
	AMQP     string
	DB       string
	Storage  string
	Extra    map[string]string
	APIAddr  string
	tb       testing.TB
	procs    []*proc
	artifact string
}

// NewEnv gives a test its own database, vhost and storage directory.
func NewEnv(tb testing.TB) *Env {
	tb.Helper()
	if binDir == "" {
		tb.Skip("end-to-end tests need the servers; skipped under -short")
	}
	e := &Env{
		AMQP:    testenv.RabbitMQ(tb),
		DB:      testenv.Postgres(tb),
		Storage: tb.TempDir(),
		Extra:   map[string]string{},
		tb:      tb,
	}
	tb.Cleanup(func() {
		for i := len(e.procs) - 1; i >= 0; i-- {
			e.procs[i].Stop(tb)
		}
		if tb.Failed() {
			for _, p := range e.procs {
				tb.Logf("---- %s output (last 4 KB) ----\n%s", p.name, tail(p.Output(), 4096))
			}
		}
	})
	return e
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// FreeAddr returns a loopback address with a port that was free just now.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	addr := ln.Addr().String()
	require.NoError(tb, ln.Close())
	return addr
}

// Start runs one service with the environment plus extra variables and
// waits until its /readyz answers 200.
func (e *Env) Start(name string, extra ...string) *proc {
	e.tb.Helper()
	health := FreeAddr(e.tb)
	env := append(os.Environ(),
		"AMQP_URL="+e.AMQP, "DATABASE_URL="+e.DB, "STORAGE_DIR="+e.Storage,
		"LOG_FORMAT=json", "LOG_LEVEL=info", "HEALTH_ADDR="+health,
	)
	for k, v := range e.Extra {
		env = append(env, k+"="+v)
	}
	env = append(env, extra...)
	cmd := exec.Command(filepath.Join(binDir, name))
	cmd.Env = env
	p := &proc{name: name, cmd: cmd, health: health, done: make(chan struct{})}
	cmd.Stdout = p
	cmd.Stderr = p
	require.NoError(e.tb, cmd.Start())
	go func() { p.err = cmd.Wait(); close(p.done) }()
	e.procs = append(e.procs, p)
	e.WaitReady(p)
	return p
}

// WaitReady waits for p's /readyz to answer 200.
func (e *Env) WaitReady(p *proc) {
	e.tb.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			e.tb.Fatalf("%s exited early (%v):\n%s", p.name, p.err, tail(p.Output(), 4096))
		default:
		}
		resp, err := http.Get("http://" + p.health + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.tb.Fatalf("%s not ready within 60 s:\n%s", p.name, tail(p.Output(), 4096))
}

// StartPipeline starts ingest-api, the downloader, `resizers` resizers and
// the recorder, and returns the API's base URL.
func (e *Env) StartPipeline(resizers int) string {
	e.tb.Helper()
	e.APIAddr = FreeAddr(e.tb)
	e.Start("ingest-api", "HTTP_ADDR="+e.APIAddr)
	e.Start("recorder")
	e.Start("downloader")
	for range resizers {
		e.Start("resizer")
	}
	return "http://" + e.APIAddr
}

// Procs returns the running processes named name.
func (e *Env) Procs(name string) []*proc {
	var out []*proc
	for _, p := range e.procs {
		if p.name == name {
			out = append(out, p)
		}
	}
	return out
}

// Call sends a JSON request and decodes a JSON answer into out (if not nil).
func Call(tb testing.TB, method, url string, body any, out any) int {
	tb.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		require.NoError(tb, err)
		r = bytes.NewReader(raw)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	require.NoError(tb, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(tb, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(tb, err)
	if out != nil && len(raw) > 0 {
		require.NoError(tb, json.Unmarshal(raw, out), "body: %s", raw)
	}
	return resp.StatusCode
}
