package ginhttp

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/require"
)

type requestLog struct {
	mu   sync.Mutex
	seen []string
}

func (l *requestLog) ObserveRequest(method, route string, status int, _ time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen = append(l.seen, method+" "+route+" "+http.StatusText(status))
}

// TestMetricsMiddlewareRecordsRouteTemplates checks that requests are
// recorded by route template, never by path, including those no route
// matched and those a later middleware refused.
func TestMetricsMiddlewareRecordsRouteTemplates(t *testing.T) {
	t.Parallel()
	gin.SetMode(gin.TestMode)
	log := &requestLog{}
	r := gin.New()
	r.Use(Metrics(log))
	r.Use(func(c *gin.Context) {
		if c.GetHeader("X-Refuse") != "" {
			c.AbortWithStatus(http.StatusUnauthorized)
		}
	})
	r.GET("/photos/:uuid", func(c *gin.Context) { c.Status(http.StatusOK) })
	r.NoRoute(func(c *gin.Context) { c.Status(http.StatusNotFound) })

	for _, req := range []*http.Request{
		httptest.NewRequest(http.MethodGet, "/photos/123", nil),
		httptest.NewRequest(http.MethodGet, "/photos/456", nil),
		httptest.NewRequest(http.MethodGet, "/nowhere/789", nil),
	} {
		r.ServeHTTP(httptest.NewRecorder(), req)
	}
	refused := httptest.NewRequest(http.MethodGet, "/photos/123", nil)
	refused.Header.Set("X-Refuse", "1")
	r.ServeHTTP(httptest.NewRecorder(), refused)

	require.Equal(t, []string{
		"GET /photos/:uuid OK",
		"GET /photos/:uuid OK",
		"GET  Not Found",
		"GET /photos/:uuid Unauthorized",
	}, log.seen)
}
