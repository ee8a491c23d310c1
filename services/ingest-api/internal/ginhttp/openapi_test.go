package ginhttp

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/services/ingest-api/internal/app"
)

// apiEngine registers every route the way main does (handlers without use
// cases: only the routes are looked at).
func apiEngine(t *testing.T) *gin.Engine {
	t.Helper()
	gin.SetMode(gin.TestMode)
	r := gin.New()
	log := slog.New(slog.DiscardHandler)
	ok := func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) }
	NewHandler(nil, log, 1<<20).WithUploads(&app.Uploads{}, 1<<20).Routes(r, ok, ok)
	NewAdminHandler(nil, log).Routes(r)
	NewJobsHandler(nil, log, 1<<20).Routes(r)
	NewDashboardHandler(nil, log).Routes(r)
	docs, err := NewDocs(t.Context())
	require.NoError(t, err)
	docs.Routes(r)
	return r
}

var ginParam = regexp.MustCompile(`[:*]([A-Za-z_][A-Za-z0-9_]*)`)

// openAPIPath writes a gin route as an OpenAPI path: :id and *key become
// {id} and {key}.
func openAPIPath(route string) string {
	return ginParam.ReplaceAllString(route, "{$1}")
}

// TestOpenAPIMatchesRoutes keeps the document true: every registered route
// is documented with its method, and every documented operation is a
// registered route (or, for /metrics, declares the other listener that
// serves it).
func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	doc, err := LoadOpenAPI(t.Context())
	require.NoError(t, err, "the document validates")

	registered := map[string]bool{}
	for _, rt := range apiEngine(t).Routes() {
		op := rt.Method + " " + openAPIPath(rt.Path)
		registered[op] = true
		item := doc.Paths.Find(openAPIPath(rt.Path))
		if item == nil || item.GetOperation(rt.Method) == nil {
			t.Errorf("route %s %s is not in openapi.yaml (as %s)", rt.Method, rt.Path, op)
		}
	}
	var documented []string
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			documented = append(documented, method+" "+path)
			if registered[method+" "+path] {
				continue
			}
			if len(item.Servers) > 0 || (op.Servers != nil && len(*op.Servers) > 0) {
				continue // served by another listener, which the document names
			}
			t.Errorf("openapi.yaml documents %s %s, which no route serves", method, path)
		}
	}
	sort.Strings(documented)
	require.NotEmpty(t, documented)
	for _, must := range []string{"GET /metrics", "POST /photos", "GET /photos/{uuid}", "POST /jobs", "GET /jobs/{id}"} {
		require.Contains(t, documented, must)
	}
}

// TestOpenAPIDocumentsCallbacks checks the shapes other handlers rely on:
// callback_url in requests, callback in responses.
func TestOpenAPIDocumentsCallbacks(t *testing.T) {
	t.Parallel()
	doc, err := LoadOpenAPI(t.Context())
	require.NoError(t, err)
	schema := func(name string) *openapi3.Schema {
		ref, ok := doc.Components.Schemas[name]
		require.True(t, ok, name)
		return ref.Value
	}
	require.Equal(t, "uri", schema("CreatePhotosRequest").Properties["callback_url"].Value.Format)
	require.Equal(t, "uri", schema("JobRequest").Properties["callback_url"].Value.Format)
	for _, name := range []string{"Photo", "Job"} {
		cb := schema(name).Properties["callback"].Value
		require.NotNil(t, cb, name)
		att := cb.Properties["attempts"].Value.Items.Value
		for _, f := range []string{"attempt", "at", "status_code", "error", "duration_ms"} {
			require.Contains(t, att.Properties, f, name)
		}
	}
}

func TestDocsServed(t *testing.T) {
	t.Parallel()
	r := apiEngine(t)
	get := func(path string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		return w
	}
	w := get("/openapi.json")
	require.Equal(t, http.StatusOK, w.Code)
	require.Equal(t, "application/json", w.Header().Get("Content-Type"))
	var doc map[string]any
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &doc))
	require.Equal(t, "3.0.3", doc["openapi"])
	require.Contains(t, doc["paths"], "/photos/{uuid}")
	// What the served JSON says loads and validates too.
	loaded, err := openapi3.NewLoader().LoadFromData(w.Body.Bytes())
	require.NoError(t, err)
	require.NoError(t, loaded.Validate(t.Context()))

	for path, want := range map[string]string{
		"/docs": `src="/ui/docs.js"`, "/dashboard": `src="/ui/dashboard.js"`,
		"/ui/docs.js": "openapi.json", "/ui/dashboard.js": "/photos/upload", "/ui/style.css": "font",
	} {
		w := get(path)
		require.Equal(t, http.StatusOK, w.Code, path)
		require.Contains(t, w.Body.String(), want, path)
		require.NotEmpty(t, w.Header().Get("Content-Security-Policy"), path)
	}
	require.Equal(t, "text/html; charset=utf-8", get("/docs").Header().Get("Content-Type"))
	require.True(t, strings.HasPrefix(get("/ui/docs.js").Header().Get("Content-Type"), "text/javascript"))
	require.Equal(t, http.StatusNotFound, get("/ui/nothing.js").Code)
	require.Equal(t, http.StatusNotFound, get("/ui/..%2fdashboard.go").Code)
	w = get("/")
	require.Equal(t, http.StatusFound, w.Code)
	require.Equal(t, "/dashboard", w.Header().Get("Location"))
	// Nothing on the pages is fetched from elsewhere.
	for _, name := range []string{"dashboard.html", "docs.html", "dashboard.js", "docs.js", "style.css"} {
		b, err := web.Open("web/" + name)
		require.NoError(t, err)
		raw, err := io.ReadAll(b)
		require.NoError(t, err)
		require.NotRegexp(t, `(?i)(src|href)="(https?:)?//`, string(raw), name)
		require.NotContains(t, string(raw), "cdn", name)
	}
}
