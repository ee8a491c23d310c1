package e2e

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// buildCLI builds the photopipe command into a temporary directory.
func buildCLI(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	bin := filepath.Join(t.TempDir(), "photopipe")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "./services/ingest-api/cmd/photopipe")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "build photopipe: %s", out)
	return bin
}

// cliResult is one run of the command.
type cliResult struct {
	stdout, stderr string
	code           int
}

// runCLI runs the command with the API's address and key in its
// environment and stdin as its standard input.
func runCLI(t *testing.T, bin, api, key, stdin string, args ...string) cliResult {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "PHOTOPIPE_API="+api, "PHOTOPIPE_API_KEY="+key)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	require.NoError(t, cmd.Start())
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(3 * time.Minute):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("photopipe %s did not finish within 3 minutes:\n%s\n%s", strings.Join(args, " "), stdout.String(), stderr.String())
	}
	res := cliResult{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		res.code = exit.ExitCode()
	} else {
		require.NoError(t, err)
	}
	t.Logf("photopipe %s: exit %d\n%s%s", strings.Join(args, " "), res.code, res.stdout, res.stderr)
	return res
}

var thumbLine = regexp.MustCompile(`(?m)^  (http://\S+/files/thumbnails/\S+)$`)

// TestCLISubmit submits a folder, a file and URLs with photopipe submit
// against the running pipeline (API keys on): it waits until every photo
// is final, prints where every thumbnail is (each one downloads), exits 0
// when all completed and 1 with the reasons when some failed; dlq list
// works with an admin key.
func TestCLISubmit(t *testing.T) {
	const apiKey = "cli-api-key-0123456789abcdef"
	const adminKey = "cli-admin-key-0123456789abcdef"
	bin := buildCLI(t)
	env := NewEnv(t)
	env.Extra["AUTH_DISABLED"] = "false"
	env.Extra["API_KEYS"] = apiKey
	env.Extra["ADMIN_API_KEYS"] = adminKey
	jpeg := encodeJPEG(t, 640, 480)
	src := ImageServer(t, map[string][]byte{"remote.jpg": jpeg, "not-an-image.jpg": []byte("<html>oops</html>")})
	api := env.StartPipeline(1)

	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "album", "sub"), 0o755))
	for _, name := range []string{"album/one.jpg", "album/sub/two.jpg", "single.jpg"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), jpeg, 0o644))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "album", ".DS_Store"), []byte("junk"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a photo"), 0o644))

	t.Run("all complete", func(t *testing.T) {
		res := runCLI(t, bin, api, apiKey, src.URL+"/remote.jpg\n",
			"submit", "--interval", "200ms", filepath.Join(dir, "album"), filepath.Join(dir, "single.jpg"), "-f", "-")
		require.Equal(t, 0, res.code, res.stderr)
		assert.Contains(t, res.stdout, "4 completed, 0 failed")
		assert.Contains(t, res.stdout, "[4/4]", "plain progress lines when stdout is not a terminal")
		thumbs := thumbLine.FindAllStringSubmatch(res.stdout, -1)
		require.Len(t, thumbs, 4, "one thumb per photo")
		for _, m := range thumbs {
			assert.Equal(t, http.StatusOK, keyCall(t, http.MethodGet, m[1], apiKey, nil, nil), m[1])
		}
	})

	t.Run("failures exit 1 with reasons", func(t *testing.T) {
		list := filepath.Join(dir, "list.txt")
		require.NoError(t, os.WriteFile(list, []byte("# mixed\n"+src.URL+"/missing.jpg\n"+src.URL+"/not-an-image.jpg\n"+
			filepath.Join(dir, "notes.txt")+"\n"+src.URL+"/remote.jpg\n"), 0o644))
		res := runCLI(t, bin, api, apiKey, "", "submit", "--interval", "200ms", "-r", "thumb,small", "-f", list)
		require.Equal(t, 1, res.code)
		assert.Contains(t, res.stdout, "1 completed, 3 failed")
		assert.Contains(t, res.stdout, "download_http_status")
		assert.Contains(t, res.stdout, "unsupported_format")
		assert.Contains(t, res.stdout, "notes.txt")
		assert.Len(t, thumbLine.FindAllString(res.stdout, -1), 2, "thumb and small of the good one")
		assert.Contains(t, res.stderr, "photopipe: 3 of 4 photo(s) failed")
	})

	t.Run("a wrong key is refused", func(t *testing.T) {
		res := runCLI(t, bin, api, "wrong-key-0123456789abcdef", "", "submit", filepath.Join(dir, "single.jpg"))
		require.Equal(t, 1, res.code)
		assert.Contains(t, res.stdout+res.stderr, "invalid_api_key")
	})

	t.Run("dlq list", func(t *testing.T) {
		res := runCLI(t, bin, api, adminKey, "", "dlq", "list")
		require.Equal(t, 0, res.code, res.stderr)
		for _, svc := range []string{"downloader", "resizer", "recorder"} {
			assert.Contains(t, res.stdout, "dead-letter."+svc)
		}
	})
}
