package e2e

import (
	"bufio"
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
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/shared/envconfig"
	"github.com/photopipe/photopipe/shared/storage"
	"github.com/photopipe/photopipe/shared/storage/s3test"
	"github.com/photopipe/photopipe/shared/testenv"
)

// binDir holds the service binaries built once by TestMain, the same way
// make build and the Dockerfiles build them.
var binDir string

// The suite runs once per storage backend (PHOTOPIPE_E2E_STORAGE, default
// "local,s3"): every test sees the backend of the current pass in
// Env.Backend. The S3 pass serves a bucket per test from one versitygw.
var (
	backend  string
	backends []string
	s3srv    *s3test.Server
)

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
		return runPerBackend(m)
	}()
	os.Exit(code)
}

// runPerBackend runs the tests once per storage backend. Benchmarks run in
// the first pass only.
func runPerBackend(m *testing.M) int {
	backends = nil
	for _, b := range strings.Split(envOr("PHOTOPIPE_E2E_STORAGE", "local,s3"), ",") {
		switch b = strings.TrimSpace(b); b {
		case "":
		case storage.BackendLocal, storage.BackendS3:
			if b == storage.BackendS3 && s3test.Skipped() {
				fmt.Println("e2e: S3 pass skipped (PHOTOPIPE_TEST_S3=skip)")
				continue
			}
			backends = append(backends, b)
		default:
			fmt.Fprintf(os.Stderr, "PHOTOPIPE_E2E_STORAGE: %q is neither local nor s3\n", b)
			return 1
		}
	}
	if f := flag.Lookup("test.bench"); f != nil && f.Value.String() != "" && len(backends) > 1 {
		backends = backends[:1]
	}
	code := 0
	for _, b := range backends {
		backend = b
		if b == storage.BackendS3 {
			srv, err := s3test.StartServer()
			if err != nil {
				fmt.Fprintf(os.Stderr, "e2e: S3 pass: %v\n", err)
				code = 1
				continue
			}
			s3srv = srv
			fmt.Printf("=== e2e pass: storage backend s3 (versitygw at %s)\n", srv.Endpoint)
		} else {
			fmt.Printf("=== e2e pass: storage backend %s\n", b)
		}
		if c := m.Run(); c != 0 {
			code = c
		}
		if s3srv != nil {
			if err := s3srv.Close(); err != nil {
				fmt.Fprintf(os.Stderr, "e2e: stop versitygw: %v\n", err)
			}
			s3srv = nil
		}
	}
	return code
}

// lastPass reports whether the current pass is the last one: tests too
// long to run on every backend run there only.
func lastPass() bool {
	return len(backends) > 0 && backend == backends[len(backends)-1]
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// proc is one running service process.
type proc struct {
	name   string
	cmd    *exec.Cmd
	health string
	// collect copies the process's output to the file log.
	collect *exec.Cmd
	log     string
	done    chan struct{}
	err     error
}

// Output returns what the process printed so far.
func (p *proc) Output() string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return fmt.Sprintf("(output of %s unreadable: %v)", p.name, err)
	}
	return string(b)
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
	AMQP string
	DB   string
	// Backend is the storage backend of this pass: "local" or "s3".
	Backend string
	// Storage is the directory holding the stored files under their keys:
	// the local backend's STORAGE_DIR, or on S3 the bucket's directory on
	// the versitygw server (objects are plain files there).
	Storage string
	// Bucket is the test's bucket on the S3 pass.
	Bucket   string
	Extra    map[string]string
	APIAddr  string
	tb       testing.TB
	procs    []*proc
	artifact string
	store    storage.Backend
	logs     string // the processes' output files
}

// NewEnv gives a test its own database, vhost and storage (a directory, or
// a bucket on the S3 pass).
func NewEnv(tb testing.TB) *Env {
	tb.Helper()
	if binDir == "" {
		tb.Skip("end-to-end tests need the servers; skipped under -short")
	}
	e := &Env{
		AMQP:    testenv.RabbitMQ(tb),
		DB:      testenv.Postgres(tb),
		Backend: backend,
		// Local test settings: no API keys, no rate limit, and sources on
		// loopback (the test servers) may be fetched. Tests of those
		// (hostile_test.go) override them.
		Extra: map[string]string{
			"AUTH_DISABLED": "true", "RATE_LIMIT_RPS": "0", "DOWNLOAD_ALLOWED_NETWORKS": "127.0.0.0/8",
		},
		tb: tb,
	}
	if backend == storage.BackendS3 {
		e.Bucket = s3srv.Bucket(tb)
		e.Storage = filepath.Join(s3srv.DataDir, e.Bucket)
	} else {
		e.Storage = storageDir(tb)
	}
	// Also in the test's own environment, so that processes a test starts
	// by itself (not through Start) get the same storage. (Tests with an
	// Env therefore cannot be parallel; none is.)
	for _, kv := range e.StorageEnv() {
		k, v, _ := strings.Cut(kv, "=")
		tb.Setenv(k, v)
	}
	tb.Logf("storage backend: %s", e.Backend)
	e.logs = tb.TempDir() // before the cleanup below, which reads them, is registered
	tb.Cleanup(func() {
		for i := len(e.procs) - 1; i >= 0; i-- {
			e.procs[i].Stop(tb)
		}
		if e.store != nil {
			_ = e.store.Close()
		}
		if tb.Failed() {
			for _, p := range e.procs {
				tb.Logf("---- %s output (last 4 KB) ----\n%s", p.name, tail(p.Output(), 4096))
			}
		}
	})
	return e
}

// storageDir returns a new local storage directory for a test: its own
// temporary directory, removed when it ends, or, when PHOTOPIPE_E2E_KEEP_DIR
// is set (make bench sets it), a new directory under that one, left for the
// caller to remove once every benchmark has run. A benchmark's cleanup
// deleting a run's thousands of files would load the next run: on a file
// system without a journal (ext4 on this machine's disk) every new inode is
// chosen by scanning past the inodes deleted in the last minute or more
// (ext4's recently_deleted), which took 12% of the machine's busy time in
// the tiny-photo run after a deletion, about 1 ms of CPU per photo.
func storageDir(tb testing.TB) string {
	tb.Helper()
	keep := os.Getenv("PHOTOPIPE_E2E_KEEP_DIR")
	if keep == "" {
		return tb.TempDir()
	}
	require.NoError(tb, os.MkdirAll(keep, 0o755))
	dir, err := os.MkdirTemp(keep, "storage-")
	require.NoError(tb, err)
	return dir
}

// StorageEnv returns the storage settings of the services.
func (e *Env) StorageEnv() []string {
	if e.Backend != storage.BackendS3 {
		return []string{"STORAGE_BACKEND=local", "STORAGE_DIR=" + e.Storage}
	}
	return []string{
		"STORAGE_BACKEND=s3", "S3_ENDPOINT=" + s3srv.Endpoint, "S3_REGION=" + s3test.Region,
		"S3_BUCKET=" + e.Bucket, "S3_ACCESS_KEY_ID=" + s3srv.AccessKey,
		"S3_SECRET_ACCESS_KEY=" + s3srv.SecretKey, "S3_PATH_STYLE=true",
	}
}

// ReadFile returns a stored file through the storage backend, as the
// services see it.
func (e *Env) ReadFile(key string) ([]byte, error) {
	e.tb.Helper()
	if e.store == nil {
		r := envconfig.New(func(k string) string {
			for _, kv := range e.StorageEnv() {
				if name, v, _ := strings.Cut(kv, "="); name == k {
					return v
				}
			}
			return ""
		})
		st, err := storage.Open(context.Background(), storage.LoadConfig(r))
		if err != nil {
			return nil, err
		}
		e.store = st
	}
	obj, err := e.store.Open(context.Background(), key)
	if err != nil {
		return nil, err
	}
	defer obj.Close()
	return io.ReadAll(obj)
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
		"AMQP_URL="+e.AMQP, "DATABASE_URL="+e.DB,
		"LOG_FORMAT=json", "LOG_LEVEL=info", "HEALTH_ADDR="+health,
	)
	env = append(env, e.StorageEnv()...)
	for k, v := range e.Extra {
		env = append(env, k+"="+v)
	}
	env = append(env, extra...)
	cmd := exec.Command(filepath.Join(binDir, name))
	cmd.Env = env
	// The output goes through a pipe, as a container runtime takes it, to
	// a process of its own (cat) that writes it to a file: not to this
	// process, whose benchmarks' load generator would share its cores
	// with a goroutine woken for every line.
	out, err := os.CreateTemp(e.logs, name+"-*.log")
	require.NoError(e.tb, err)
	defer out.Close() // the children have their own descriptors
	pr, pw, err := os.Pipe()
	require.NoError(e.tb, err)
	defer pr.Close()
	defer pw.Close()
	collect := exec.Command("cat")
	collect.Stdin, collect.Stdout = pr, out
	require.NoError(e.tb, collect.Start())
	p := &proc{name: name, cmd: cmd, collect: collect, health: health, log: out.Name(), done: make(chan struct{})}
	cmd.Stdout = pw
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		_ = collect.Process.Kill()
		_ = collect.Wait()
		e.tb.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		_ = collect.Wait() // the rest of the output is in the file
		close(p.done)
	}()
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
	r := requestBody(tb, body)
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
