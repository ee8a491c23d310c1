package ginhttp

import (
	"container/list"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"
)

// RateLimiter gives every client (an API key, or an address when
// authentication is off) a token bucket: rps requests per second on
// average, burst at once. It tracks at most maxClients buckets and forgets
// the least recently seen first, so a flood of new clients cannot grow its
// memory; a forgotten client starts again with a full bucket.
type RateLimiter struct {
	limit      rate.Limit
	burst      int
	maxClients int
	now        func() time.Time

	mu      sync.Mutex
	clients map[string]*list.Element // of *bucket
	recent  *list.List               // most recently seen first
}

type bucket struct {
	client string
	lim    *rate.Limiter
}

// NewRateLimiter returns a RateLimiter, or nil (no limit) when rps is 0 or
// less. burst and maxClients are at least 1.
func NewRateLimiter(rps float64, burst, maxClients int) *RateLimiter {
	if rps <= 0 {
		return nil
	}
	return &RateLimiter{
		limit: rate.Limit(rps), burst: max(burst, 1), maxClients: max(maxClients, 1), now: time.Now,
		clients: map[string]*list.Element{}, recent: list.New(),
	}
}

// Allow takes a token from client's bucket. When there is none it returns
// false and how long until there will be one.
func (l *RateLimiter) Allow(client string) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	lim := l.bucket(client)
	l.mu.Unlock()
	r := lim.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Second
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now) // a refused request costs nothing
		return false, d
	}
	return true, 0
}

// bucket returns client's limiter, making it and forgetting the least
// recently seen client when full. l.mu is held.
func (l *RateLimiter) bucket(client string) *rate.Limiter {
	if e, ok := l.clients[client]; ok {
		l.recent.MoveToFront(e)
		return e.Value.(*bucket).lim
	}
	if l.recent.Len() >= l.maxClients {
		oldest := l.recent.Back()
		l.recent.Remove(oldest)
		delete(l.clients, oldest.Value.(*bucket).client)
	}
	b := &bucket{client: client, lim: rate.NewLimiter(l.limit, l.burst)}
	l.clients[client] = l.recent.PushFront(b)
	return b.lim
}

// tracked is how many clients have a bucket.
func (l *RateLimiter) tracked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.recent.Len()
}

// rateLimit is the middleware that answers 429 with Retry-After to a
// client over its rate. Clients are API keys (set by authenticate), or
// addresses when authentication is off (c.ClientIP: the peer, or what a
// trusted proxy says, TRUSTED_PROXIES).
func (h *Handler) rateLimit(c *gin.Context) {
	if h.limiter == nil || openRoute(c) {
		c.Next()
		return
	}
	client := "ip:" + c.ClientIP()
	if id := c.GetString(clientKey); id != "" {
		client = "key:" + id
	}
	ok, wait := h.limiter.Allow(client)
	if ok {
		c.Next()
		return
	}
	secs := int(math.Ceil(wait.Seconds()))
	secs = max(secs, 1)
	h.log.DebugContext(c.Request.Context(), "rate limited", slog.String("client", client), slog.Int("retry_after", secs))
	c.Header("Retry-After", strconv.Itoa(secs))
	c.AbortWithStatusJSON(http.StatusTooManyRequests, errorBody{Code: "rate_limited",
		Error: fmt.Sprintf("too many requests; retry after %d s (RATE_LIMIT_RPS, RATE_LIMIT_BURST)", secs)})
}
