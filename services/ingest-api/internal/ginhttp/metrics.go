package ginhttp

import (
	"time"

	"github.com/gin-gonic/gin"
)

// RequestObserver records served requests (shared/metrics.HTTP).
type RequestObserver interface {
	ObserveRequest(method, route string, status int, elapsed time.Duration)
}

// Metrics returns the middleware that reports every request to o with its
// route template (c.FullPath: "/photos/:uuid", "" when no route matched),
// never the raw path, so that the number of series stays bounded. Installed
// on the engine before any route, it also sees requests refused by the
// authentication and rate-limit middleware.
func Metrics(o RequestObserver) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		o.ObserveRequest(c.Request.Method, c.FullPath(), c.Writer.Status(), time.Since(start))
	}
}
