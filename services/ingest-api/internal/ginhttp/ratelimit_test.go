package ginhttp

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeClock is a settable time for a RateLimiter.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestLimiter(rps float64, burst, clients int) (*RateLimiter, *fakeClock) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	l := NewRateLimiter(rps, burst, clients)
	l.now = clock.now
	return l, clock
}

func TestNewRateLimiterOff(t *testing.T) {
	t.Parallel()
	require.Nil(t, NewRateLimiter(0, 10, 10), "RATE_LIMIT_RPS=0 is no limit")
	require.Nil(t, NewRateLimiter(-1, 10, 10))
}

func TestRateLimiterBucket(t *testing.T) {
	t.Parallel()
	l, clock := newTestLimiter(2, 3, 10)
	for i := range 3 {
		ok, _ := l.Allow("a")
		require.True(t, ok, "request %d is within the burst", i+1)
	}
	ok, wait := l.Allow("a")
	require.False(t, ok, "the burst is spent")
	require.InDelta(t, 500*time.Millisecond, wait, float64(time.Millisecond), "one token comes back every 1/rps")
	ok, _ = l.Allow("b")
	require.True(t, ok, "another client has its own bucket")

	// Refused requests cost nothing: the next token comes on time.
	for range 5 {
		ok, _ = l.Allow("a")
		require.False(t, ok)
	}
	clock.advance(500 * time.Millisecond)
	ok, _ = l.Allow("a")
	require.True(t, ok)
	ok, _ = l.Allow("a")
	require.False(t, ok)

	clock.advance(time.Hour)
	for range 3 {
		ok, _ = l.Allow("a")
		require.True(t, ok, "an idle client has its full burst back, not more")
	}
	ok, _ = l.Allow("a")
	require.False(t, ok)
}

func TestRateLimiterMemoryIsBounded(t *testing.T) {
	t.Parallel()
	l, _ := newTestLimiter(1, 1, 100)
	for i := range 10_000 {
		ok, _ := l.Allow(fmt.Sprintf("ip:10.0.%d.%d", i/256, i%256))
		require.True(t, ok)
	}
	require.Equal(t, 100, l.tracked(), "only the most recent clients are kept")

	// The most recently seen client keeps its (empty) bucket; an old one
	// was forgotten and starts afresh.
	last := fmt.Sprintf("ip:10.0.%d.%d", 9999/256, 9999%256)
	ok, _ := l.Allow(last)
	require.False(t, ok, "a recent client is still limited")
	ok, _ = l.Allow("ip:10.0.0.0")
	require.True(t, ok, "a forgotten client starts with a full bucket")
	require.Equal(t, 100, l.tracked())
}

func TestRateLimiterConcurrent(t *testing.T) {
	t.Parallel()
	l, _ := newTestLimiter(1, 50, 8)
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := map[string]int{}
	for g := range 8 {
		wg.Go(func() {
			client := "key:" + strconv.Itoa(g%4)
			for range 100 {
				if ok, _ := l.Allow(client); ok {
					mu.Lock()
					allowed[client]++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	for c, n := range allowed {
		require.Equal(t, 50, n, "%s got exactly its burst (the clock stands still)", c)
	}
}

func TestRateLimitMiddleware(t *testing.T) {
	t.Parallel()
	auth := mustAuth(t, AuthConfig{Keys: []string{apiKey, "other-api-key-0123456789"}, AdminKeys: []string{adminKey}})
	limiter, _ := newTestLimiter(1, 2, 100)
	api := newSecuredAPI(t, auth, limiter)

	for range 2 {
		require.Equal(t, http.StatusOK, api.do(t, "GET", "/photos/pending", "Bearer "+apiKey, "").status)
	}
	got := api.do(t, "GET", "/photos/pending", "Bearer "+apiKey, "")
	require.Equal(t, http.StatusTooManyRequests, got.status, got.raw)
	require.Equal(t, "rate_limited", got.body.Code)
	require.NotEmpty(t, got.body.Error)
	require.Equal(t, "1", got.header.Get("Retry-After"))
	got = api.do(t, "POST", "/photos", "Bearer "+apiKey, `{"url": "https://example.com/a.jpg"}`)
	require.Equal(t, http.StatusTooManyRequests, got.status, "the limit is per key, over every route")

	require.Equal(t, http.StatusOK, api.do(t, "GET", "/photos/pending", "Bearer other-api-key-0123456789", "").status,
		"another key has its own budget, from the same address")
	require.Equal(t, http.StatusOK, api.do(t, "GET", "/admin/dead-letters", "Bearer "+adminKey, "").status)
	for range 5 {
		require.Equal(t, http.StatusOK, api.do(t, "GET", "/readyz", "", "").status, "probes are never limited")
	}
	require.Equal(t, http.StatusUnauthorized, api.do(t, "GET", "/photos/pending", "", "").status,
		"a request without a key is refused before it could use anyone's budget")
}

func TestRateLimitPerAddressWithoutAuth(t *testing.T) {
	t.Parallel()
	limiter, _ := newTestLimiter(1, 2, 100)
	api := newSecuredAPI(t, mustAuth(t, AuthConfig{Disabled: true}), limiter)
	for i := range 2 {
		require.Equal(t, http.StatusOK, api.do(t, "GET", "/photos/pending", "", "", "X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i)).status)
	}
	got := api.do(t, "GET", "/photos/pending", "", "", "X-Forwarded-For", "203.0.113.99")
	require.Equal(t, http.StatusTooManyRequests, got.status, "X-Forwarded-For from an untrusted peer does not make a new client")
	require.NotEmpty(t, got.header.Get("Retry-After"))
	got = api.do(t, "GET", "/photos/pending", "Bearer "+apiKey, "")
	require.Equal(t, http.StatusTooManyRequests, got.status, "without auth a key header changes nothing")
}
