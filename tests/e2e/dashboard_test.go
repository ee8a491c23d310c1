package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// chromiumPath is Debian's chromium package; PHOTOPIPE_CHROMIUM overrides.
func chromiumPath() string { return envOr("PHOTOPIPE_CHROMIUM", "/usr/bin/chromium") }

// Browser starts headless Chromium and returns a tab's context. Without
// Chromium the test fails (CI installs it, .ci/run); PHOTOPIPE_SKIP_BROWSER=1
// skips it on machines that cannot have it. JavaScript exceptions and
// console errors on the pages fail the test.
func Browser(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath()
	if _, err := exec.LookPath(path); err != nil {
		if os.Getenv("PHOTOPIPE_SKIP_BROWSER") == "1" {
			t.Skipf("no Chromium at %s and PHOTOPIPE_SKIP_BROWSER=1", path)
		}
		t.Fatalf("the dashboard test needs headless Chromium at %s (%v): install Debian's chromium package "+
			"(apt-get install -y chromium; .ci/run does it), point PHOTOPIPE_CHROMIUM at a Chromium, "+
			"or set PHOTOPIPE_SKIP_BROWSER=1 to skip this test locally", path, err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.WindowSize(1400, 1200),
		chromedp.UserDataDir(t.TempDir()))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	// The first call starts the browser, which lives as long as its
	// context: no time limit on that one.
	require.NoError(t, chromedp.Do(ctx), "start Chromium at %s", path)
	var mu sync.Mutex
	var pageErrors []string
	require.NoError(t, chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := e.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			pageErrors = append(pageErrors, fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber+1, msg))
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError {
				var args []string
				for _, a := range e.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				pageErrors = append(pageErrors, "console.error: "+strings.Join(args, " "))
			}
		}
	}))
	t.Cleanup(func() {
		mu.Lock()
		errs := pageErrors
		mu.Unlock()
		assert.Empty(t, errs, "JavaScript errors on the pages")
		cancelTab()
		cancelAlloc()
	})
	return ctx
}

// artifactDir is where test runs keep screenshots: $PHOTOPIPE_ARTIFACTS,
// or tests/e2e/artifacts (git-ignored).
func artifactDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(envOr("PHOTOPIPE_ARTIFACTS", "artifacts"))
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}

// screenshot saves the whole page as <artifacts>/<name>-<backend>.png.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(90))
	if err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	file := filepath.Join(artifactDir(t), fmt.Sprintf("%s-%s.png", name, backend))
	require.NoError(t, os.WriteFile(file, png, 0o644))
	t.Logf("screenshot: %s", file)
}

// keyCall is Call with a bearer key.
func keyCall(t *testing.T, method, url, key string, body, out any) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, requestBody(t, body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if out != nil {
		require.NoError(t, json.Unmarshal(raw, out), "body: %s", raw)
	}
	return resp.StatusCode
}

// inPage runs a chromedp action with its own time limit; on failure it
// keeps a screenshot and stops the test.
func inPage[T any](t *testing.T, ctx context.Context, what string, timeout time.Duration, a chromedp.Action[T]) T {
	t.Helper()
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	v, err := chromedp.Run(actx, a)
	if err != nil {
		screenshot(t, ctx, "dashboard-failed")
		t.Fatalf("dashboard: %s: %v", what, err)
	}
	return v
}

// css is a CSS selector.
func css(format string, args ...any) chromedp.CSS { return chromedp.CSS(fmt.Sprintf(format, args...)) }

// TestDashboard drives the dashboard in headless Chromium against the whole
// pipeline with API keys on: the page loads without a key and works once
// an admin key is entered; a photo and a job's photo waiting in the
// resizer's dead-letter queue are replayed with the button and complete
// (the job's progress bar shows while it waits); a photo uploaded through
// the form shows its thumbnail; the counts follow. A screenshot
// is kept in the artifacts directory.
func TestDashboard(t *testing.T) {
	const adminKey = "dashboard-admin-key-0123456789abcdef"
	env := NewEnv(t)
	env.Extra["AUTH_DISABLED"] = "false"
	env.Extra["ADMIN_API_KEYS"] = adminKey
	env.Extra["RETRY_MAX"] = "2"
	env.Extra["RETRY_INITIAL"] = "20ms"
	env.Extra["RETRY_MAX_INTERVAL"] = "50ms"
	jpeg := encodeJPEG(t, 640, 480)
	src := ImageServer(t, map[string][]byte{"a.jpg": jpeg})
	ctx := Browser(t)
	api := env.StartPipeline(1)

	// A photo the resizer cannot store (thumbnails is a plain file) ends
	// in its dead-letter queue.
	blocker := filepath.Join(env.Storage, "thumbnails")
	require.NoError(t, os.WriteFile(blocker, []byte("in the way"), 0o644))
	var created struct{ Photos []struct{ UUID string } }
	require.Equal(t, http.StatusCreated, keyCall(t, http.MethodPost, api+"/photos", adminKey,
		map[string]any{"urls": []string{src.URL + "/a.jpg"}, "process": true}, &created))
	dead := created.Photos[0].UUID
	// So does the first photo of a job's group; the job waits, running.
	var job struct {
		JobID string `json:"job_id"`
	}
	require.Equal(t, http.StatusAccepted, keyCall(t, http.MethodPost, api+"/jobs", adminKey,
		map[string]any{"groups": []map[string]any{{"key": "S1", "urls": []string{src.URL + "/a.jpg?n=1", src.URL + "/a.jpg?n=2"}}}}, &job))
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var list dlList
		assert.Equal(c, http.StatusOK, keyCall(t, http.MethodGet, api+"/admin/dead-letters/resizer", adminKey, nil, &list))
		assert.Len(c, list.Entries, 2)
	}, 60*time.Second, 200*time.Millisecond)

	// The page itself needs no key; the data does.
	inPage(t, ctx, "open without a key", 30*time.Second, chromedp.Steps(
		chromedp.Navigate(api+"/dashboard"),
		chromedp.WaitVisible(css("#api-key")),
		chromedp.WaitVisible(css("#auth-status.bad"))))
	status := inPage(t, ctx, "read the key status", 5*time.Second, chromedp.Text(css("#auth-status")))
	assert.Contains(t, status, "needs a key")
	inPage(t, ctx, "enter the key", 30*time.Second, chromedp.Steps(
		chromedp.SendKeys(css("#api-key"), adminKey),
		chromedp.Click(css("#save-key")),
		chromedp.WaitVisible(css(`#dlq-body tr[data-service="resizer"] td[data-count="2"]`))))
	// The running job shows a progress bar: nothing done of 2.
	bar := css(`#jobs li[data-job=%q] progress`, job.JobID)
	inPage(t, ctx, "the running job", 30*time.Second, chromedp.WaitVisible(bar))
	progress := inPage(t, ctx, "the job's progress", 5*time.Second, chromedp.AttributeValue(bar, "max"))
	assert.Equal(t, "2", progress.Value)

	// Replay the dead letter with the button; the photo completes and
	// shows in the gallery.
	require.NoError(t, os.Remove(blocker))
	replay := css(`#dlq-body button[data-action="replay"][data-service="resizer"]`)
	inPage(t, ctx, "replay the dead letter", 30*time.Second, chromedp.Steps(
		chromedp.WaitVisible(replay),
		chromedp.Click(replay),
		chromedp.WaitVisible(css("#dlq-status.ok"))))
	replayed := inPage(t, ctx, "read the replay status", 5*time.Second, chromedp.Text(css("#dlq-status")))
	assert.Contains(t, replayed, "Replayed 2 message(s) of resizer")
	inPage(t, ctx, "the replayed photo's thumbnail", 90*time.Second, chromedp.Steps(
		chromedp.WaitVisible(css(`#gallery figure[data-photo=%q] img`, dead)),
		chromedp.WaitVisible(css(`#dlq-body tr[data-service="resizer"] td[data-count="0"]`))))
	// The job finishes (its second photo runs after the first) and leaves
	// the running list.
	inPage(t, ctx, "the job finishes", 90*time.Second, chromedp.Steps(
		chromedp.WaitNotPresent(css(`#jobs li[data-job=%q]`, job.JobID)),
		chromedp.WaitVisible(css("#jobs-empty"))))
	var p deadLetterPhoto
	require.Equal(t, http.StatusOK, keyCall(t, http.MethodGet, api+"/photos/"+dead, adminKey, nil, &p))
	assert.Equal(t, "completed", p.Status)
	assert.Nil(t, p.DeadLetter)

	// Upload through the form; the thumbnail appears.
	file := filepath.Join(t.TempDir(), "from-the-form.jpg")
	require.NoError(t, os.WriteFile(file, jpeg, 0o644))
	inPage(t, ctx, "upload through the form", 30*time.Second, chromedp.Steps(
		chromedp.SetUploadFiles(css("#upload-files"), []string{file}),
		chromedp.Click(css("#upload-submit")),
		chromedp.WaitVisible(css("#upload-result li[data-photo]"))))
	attr := inPage(t, ctx, "read the uploaded photo's id", 5*time.Second,
		chromedp.AttributeValue(css("#upload-result li[data-photo]"), "data-photo"))
	require.True(t, attr.Exists)
	uploaded := attr.Value
	img := fmt.Sprintf(`#gallery figure[data-photo=%q] img`, uploaded)
	inPage(t, ctx, "the uploaded photo's thumbnail", 90*time.Second, chromedp.WaitVisible(chromedp.CSS(img)))
	width := inPage(t, ctx, "the thumbnail's pixels", 15*time.Second,
		chromedp.Poll[int](fmt.Sprintf(`document.querySelector(%q).naturalWidth`, img), chromedp.WithPollingTimeout(15*time.Second)))
	assert.Equal(t, 320, width, "the thumb rendition, loaded with the key")
	caption := inPage(t, ctx, "caption", 10*time.Second, chromedp.Text(css(`#gallery figure[data-photo=%q] figcaption`, uploaded)))
	assert.Equal(t, "from-the-form.jpg", caption)

	// The counts follow.
	inPage(t, ctx, "counts", 30*time.Second, chromedp.Poll[bool](
		`document.querySelector("#count-completed").textContent === "4"`, chromedp.WithPollingTimeout(30*time.Second)))
	failed := inPage(t, ctx, "failed count", 5*time.Second, chromedp.Text(css("#count-failed")))
	assert.Equal(t, "0", failed)
	screenshot(t, ctx, "dashboard")

	// The docs page renders the API document.
	inPage(t, ctx, "docs page", 30*time.Second, chromedp.Steps(
		chromedp.Navigate(api+"/docs"),
		chromedp.WaitVisible(css("details#getPhoto summary"))))
	summary := inPage(t, ctx, "docs summary", 5*time.Second, chromedp.Text(css("details#getPhoto summary")))
	assert.Contains(t, summary, "/photos/{uuid}")
	screenshot(t, ctx, "docs")
}
