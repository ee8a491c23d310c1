package ginhttp

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/services/ingest-api/internal/app"
	"github.com/photopipe/photopipe/shared/deadletter"
	"github.com/photopipe/photopipe/shared/logging"
	"github.com/photopipe/photopipe/shared/rendition"
	"github.com/photopipe/photopipe/shared/storage"
)

const (
	apiKey   = "api-key-0123456789abcdef"
	adminKey = "admin-key-0123456789abcdef"
)

// memRepo is an app.Repository over a map, for the security tests.
type memRepo struct {
	mu     sync.Mutex
	photos map[string]app.Photo
}

var _ app.Repository = (*memRepo)(nil)

func (r *memRepo) Create(_ context.Context, photos []app.NewPhoto, _ bool, _ string) ([]app.Photo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]app.Photo, len(photos))
	for i, p := range photos {
		out[i] = app.Photo{UUID: "6f1c3a52-6d0e-4a8e-9a43-2f3d2f1c9b1" + string(rune('0'+i%10)), URL: p.URL, Status: "pending", Renditions: p.Renditions}
		r.photos[out[i].UUID] = out[i]
	}
	return out, nil
}

func (r *memRepo) RequestProcessing(_ context.Context, ids []string, _ app.ProcessOptions, _ string) ([]app.ProcessResult, error) {
	out := make([]app.ProcessResult, len(ids))
	for i, id := range ids {
		out[i] = app.ProcessResult{UUID: id, Outcome: "not_found"}
	}
	return out, nil
}

func (r *memRepo) ListPending(context.Context, string, int) ([]app.Photo, error) { return nil, nil }

func (r *memRepo) Get(_ context.Context, id string) (app.Photo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.photos[id]
	if !ok {
		return app.Photo{}, app.ErrNotFound
	}
	return p, nil
}

// noDeadLetters is a DeadLetters with every queue empty.
type noDeadLetters struct{}

var _ DeadLetters = noDeadLetters{}

func (noDeadLetters) Summaries(context.Context, int) ([]deadletter.Summary, error) { return nil, nil }
func (noDeadLetters) List(context.Context, string, int, int, int) (deadletter.Summary, []deadletter.Entry, error) {
	return deadletter.Summary{}, nil, nil
}
func (noDeadLetters) Replay(context.Context, string, deadletter.Selection) (deadletter.Result, error) {
	return deadletter.Result{}, nil
}
func (noDeadLetters) Discard(context.Context, string, deadletter.Selection) (deadletter.Result, error) {
	return deadletter.Result{}, nil
}

// lockedBuffer collects log output written from several goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// securedAPI is the API wired as main wires it (routes, admin routes, auth
// and rate limits) over in-memory fakes, with a debug log.
type securedAPI struct {
	url string
	log *lockedBuffer
}

func newSecuredAPI(tb testing.TB, auth *Auth, limiter *RateLimiter) *securedAPI {
	tb.Helper()
	store, err := storage.NewLocal(tb.TempDir())
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = store.Close() })
	svc := app.NewService(&memRepo{photos: map[string]app.Photo{}}, store, rendition.DefaultPresets(),
		app.Limits{MaxPhotos: 10, MaxURLLength: 2048, PageSize: 10, MaxPageSize: 10})
	logs := &lockedBuffer{}
	log, err := logging.New(logging.Config{Format: "json", Level: "debug"}, logs, "ingest-api")
	require.NoError(tb, err)
	gin.SetMode(gin.ReleaseMode)
	engine := gin.New()
	require.NoError(tb, engine.SetTrustedProxies(nil))
	ok := func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) }
	NewHandler(svc, log, 1<<20).WithAuth(auth, limiter).Routes(engine, ok, ok)
	NewAdminHandler(noDeadLetters{}, log).Routes(engine)
	srv := httptest.NewServer(engine)
	tb.Cleanup(srv.Close)
	return &securedAPI{url: srv.URL, log: logs}
}

// answer is a response's status, headers and error body.
type answer struct {
	status int
	header http.Header
	body   errorBody
	raw    string
}

func (a *securedAPI) do(tb testing.TB, method, path, authorization, body string, header ...string) answer {
	tb.Helper()
	req, err := http.NewRequestWithContext(tb.Context(), method, a.url+path, strings.NewReader(body))
	require.NoError(tb, err)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(tb, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(tb, err)
	out := answer{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if resp.StatusCode >= 400 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		require.NoError(tb, json.Unmarshal(raw, &out.body), "body: %s", raw)
	}
	return out
}

func mustAuth(tb testing.TB, cfg AuthConfig) *Auth {
	tb.Helper()
	a, err := NewAuth(cfg)
	require.NoError(tb, err)
	return a
}

func TestNewAuth(t *testing.T) {
	t.Parallel()
	_, err := NewAuth(AuthConfig{})
	require.ErrorIs(t, err, ErrNoKeys, "no key and not disabled: nothing could get in")
	a, err := NewAuth(AuthConfig{Disabled: true})
	require.NoError(t, err)
	require.True(t, a.Disabled())
	a, err = NewAuth(AuthConfig{AdminKeys: []string{adminKey}})
	require.NoError(t, err)
	require.False(t, a.Disabled())
}

func TestIdentify(t *testing.T) {
	t.Parallel()
	a := mustAuth(t, AuthConfig{Keys: []string{apiKey, "second-api-key-0123456789"}, AdminKeys: []string{adminKey}})
	for _, tc := range []struct {
		token string
		id    string
		admin bool
	}{
		{token: apiKey, id: "api-1"},
		{token: "second-api-key-0123456789", id: "api-2"},
		{token: adminKey, id: "admin-1", admin: true},
		{token: apiKey[:len(apiKey)-1]},
		{token: apiKey + "0"},
		{token: strings.ToUpper(apiKey)},
		{token: ""},
	} {
		k, ok := a.identify(tc.token)
		require.Equal(t, tc.id != "", ok, "%q", tc.token)
		require.Equal(t, tc.id, k.id)
		require.Equal(t, tc.admin, k.admin)
	}
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	api := newSecuredAPI(t, mustAuth(t, AuthConfig{Keys: []string{apiKey}, AdminKeys: []string{adminKey}}), nil)
	const (
		ok        = "" // want a 2xx or 404
		missing   = "missing_api_key"
		invalid   = "invalid_api_key"
		forbidden = "admin_key_required"
	)
	cases := []struct {
		name          string
		method, path  string
		authorization string
		body          string
		want          int
		code          string
	}{
		{"healthz is open", "GET", "/healthz", "", "", 200, ok},
		{"readyz is open", "GET", "/readyz", "", "", 200, ok},
		{"readyz ignores a bad key", "GET", "/readyz", "Bearer nope", "", 200, ok},
		{"no header", "GET", "/photos/pending", "", "", 401, missing},
		{"basic scheme", "GET", "/photos/pending", "Basic " + apiKey, "", 401, missing},
		{"bearer without a key", "GET", "/photos/pending", "Bearer ", "", 401, missing},
		{"the key alone", "GET", "/photos/pending", apiKey, "", 401, missing},
		{"wrong key", "GET", "/photos/pending", "Bearer not-the-right-key-at-all", "", 401, invalid},
		{"key prefix", "GET", "/photos/pending", "Bearer " + apiKey[:8], "", 401, invalid},
		{"key with a suffix", "GET", "/photos/pending", "Bearer " + apiKey + "x", "", 401, invalid},
		{"api key", "GET", "/photos/pending", "Bearer " + apiKey, "", 200, ok},
		{"scheme in lower case", "GET", "/photos/pending", "bearer " + apiKey, "", 200, ok},
		{"admin key on the API", "GET", "/photos/pending", "Bearer " + adminKey, "", 200, ok},
		{"create without a key", "POST", "/photos", "", `{"url": "https://example.com/a.jpg"}`, 401, missing},
		{"create with a key", "POST", "/photos", "Bearer " + apiKey, `{"url": "https://example.com/a.jpg"}`, 201, ok},
		{"process without a key", "POST", "/photos/process", "", `["6f1c3a52-6d0e-4a8e-9a43-2f3d2f1c9b10"]`, 401, missing},
		{"files without a key", "GET", "/files/thumbnails/x/thumb.jpg", "", "", 401, missing},
		{"files with a key", "GET", "/files/thumbnails/x/thumb.jpg", "Bearer " + apiKey, "", 404, ok},
		{"admin without a key", "GET", "/admin/dead-letters", "", "", 401, missing},
		{"admin with a wrong key", "GET", "/admin/dead-letters", "Bearer wrong-key-wrong-key", "", 401, invalid},
		{"admin with an api key", "GET", "/admin/dead-letters", "Bearer " + apiKey, "", 403, forbidden},
		{"admin replay with an api key", "POST", "/admin/dead-letters/resizer/replay", "Bearer " + apiKey, `{"all": true}`, 403, forbidden},
		{"admin with an admin key", "GET", "/admin/dead-letters", "Bearer " + adminKey, "", 200, ok},
		{"admin replay with an admin key", "POST", "/admin/dead-letters/resizer/replay", "Bearer " + adminKey, `{"all": true}`, 200, ok},
		{"unknown admin path with an api key", "GET", "/admin/other", "Bearer " + apiKey, "", 403, forbidden},
		{"unknown admin path with an admin key", "GET", "/admin/other", "Bearer " + adminKey, "", 404, ok},
		{"unknown route without a key", "GET", "/nothing-here", "", "", 401, missing},
		{"unknown route with a key", "GET", "/nothing-here", "Bearer " + apiKey, "", 404, ok},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := api.do(t, tc.method, tc.path, tc.authorization, tc.body)
			require.Equal(t, tc.want, got.status, got.raw)
			challenge := got.header.Get("WWW-Authenticate")
			switch tc.code {
			case ok:
				require.Empty(t, challenge)
				return
			case missing:
				require.Equal(t, `Bearer realm="photopipe"`, challenge)
			case invalid:
				require.Equal(t, `Bearer realm="photopipe", error="invalid_token"`, challenge)
			case forbidden:
				require.Equal(t, `Bearer realm="photopipe", error="insufficient_scope", scope="admin"`, challenge)
			}
			require.Equal(t, tc.code, got.body.Code)
			require.NotEmpty(t, got.body.Error)
			require.NotEmpty(t, got.header.Get(CorrelationHeader), "refusals carry a correlation id too")
		})
	}
	t.Cleanup(func() {
		logs := api.log.String()
		require.NotContains(t, logs, apiKey[:12], "keys are never logged")
		require.NotContains(t, logs, adminKey[:12], "keys are never logged")
	})
}

func TestAuthenticateLogsTheKeyID(t *testing.T) {
	t.Parallel()
	api := newSecuredAPI(t, mustAuth(t, AuthConfig{Keys: []string{apiKey}}), nil)
	require.Equal(t, http.StatusNotFound, api.do(t, "GET", "/photos/6f1c3a52-6d0e-4a8e-9a43-2f3d2f1c9b19", "Bearer "+apiKey, "").status)
	require.Equal(t, http.StatusForbidden, api.do(t, "GET", "/admin/dead-letters", "Bearer "+apiKey, "").status)
	logs := api.log.String()
	require.Contains(t, logs, `"api_key_id":"api-1"`, "requests are attributed to their key")
	require.NotContains(t, logs, apiKey)
}

func TestAuthDisabled(t *testing.T) {
	t.Parallel()
	api := newSecuredAPI(t, mustAuth(t, AuthConfig{Disabled: true}), nil)
	for _, path := range []string{"/healthz", "/photos/pending", "/admin/dead-letters"} {
		got := api.do(t, "GET", path, "", "")
		require.Equal(t, http.StatusOK, got.status, "%s: %s", path, got.raw)
		require.Empty(t, got.header.Get("WWW-Authenticate"))
	}
}
