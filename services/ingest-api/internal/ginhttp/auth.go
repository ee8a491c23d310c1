package ginhttp

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/photopipe/photopipe/shared/logging"
)

// Auth checks API keys sent as bearer tokens: "Authorization: Bearer <key>".
// API keys open the API; admin keys open the API and /admin/*. Keys are
// kept only as SHA-256 digests and compared in constant time, so neither
// the time taken nor the keys' lengths tell anything about them; they are
// never logged (a key is named by its place in the setting, "api-2").
type Auth struct {
	keys     []authKey
	disabled bool
}

type authKey struct {
	digest [sha256.Size]byte
	id     string
	admin  bool
}

// AuthConfig is what NewAuth needs: API_KEYS, ADMIN_API_KEYS and
// AUTH_DISABLED.
type AuthConfig struct {
	Keys      []string
	AdminKeys []string
	Disabled  bool
}

// ErrNoKeys is returned by NewAuth when authentication is on but no key is
// configured: every request would be refused.
var ErrNoKeys = errors.New("API_KEYS, ADMIN_API_KEYS: no API key is configured; set API_KEYS " +
	"(and ADMIN_API_KEYS for /admin) to comma-separated keys, or AUTH_DISABLED=true to run without authentication (local use only)")

// NewAuth returns an Auth over the configured keys. With Disabled it lets
// every request in; otherwise it needs at least one key (ErrNoKeys).
func NewAuth(cfg AuthConfig) (*Auth, error) {
	if cfg.Disabled {
		return &Auth{disabled: true}, nil
	}
	a := &Auth{}
	for i, k := range cfg.Keys {
		a.keys = append(a.keys, authKey{digest: sha256.Sum256([]byte(k)), id: fmt.Sprintf("api-%d", i+1)})
	}
	for i, k := range cfg.AdminKeys {
		a.keys = append(a.keys, authKey{digest: sha256.Sum256([]byte(k)), id: fmt.Sprintf("admin-%d", i+1), admin: true})
	}
	if len(a.keys) == 0 {
		return nil, ErrNoKeys
	}
	return a, nil
}

// Disabled reports whether every request is let in.
func (a *Auth) Disabled() bool { return a.disabled }

// identify returns the key matching token, comparing it with every
// configured key whatever the outcome, so that the time taken does not
// depend on which key (if any) matched.
func (a *Auth) identify(token string) (authKey, bool) {
	d := sha256.Sum256([]byte(token))
	match := -1
	for i := range a.keys {
		if subtle.ConstantTimeCompare(d[:], a.keys[i].digest[:]) == 1 {
			match = i
		}
	}
	if match < 0 {
		return authKey{}, false
	}
	return a.keys[match], true
}

// authRealm is the WWW-Authenticate challenge of every 401 and 403.
const authRealm = `Bearer realm="photopipe"`

// clientKey is the gin context key holding the id of the request's API key.
const clientKey = "photopipe.api_key_id"

// WithAuth makes the handler require API keys (auth) and rate-limit
// clients (limiter, nil for no limit) on every route but /healthz,
// /readyz and the web pages (openRoute), admin routes registered on the
// same engine included.
func (h *Handler) WithAuth(auth *Auth, limiter *RateLimiter) *Handler {
	h.auth = auth
	h.limiter = limiter
	return h
}

// openRoute reports whether a route is served without a key: probes, and
// the web pages, their assets and the API document (dashboard.go), which
// hold no data.
func openRoute(c *gin.Context) bool {
	switch c.FullPath() {
	case "/healthz", "/readyz":
		return true
	}
	return webRoute(c.FullPath())
}

// adminRoute reports whether a request is for the admin endpoints, by its
// route and, for requests matching none, by its path.
func adminRoute(c *gin.Context) bool {
	return c.FullPath() == "/admin" || strings.HasPrefix(c.FullPath(), "/admin/") ||
		c.Request.URL.Path == "/admin" || strings.HasPrefix(c.Request.URL.Path, "/admin/")
}

// authenticate is the middleware that checks the bearer key: 401 without
// a valid one, 403 for a key that is not an admin key on /admin routes.
func (h *Handler) authenticate(c *gin.Context) {
	if h.auth == nil || h.auth.disabled || openRoute(c) {
		c.Next()
		return
	}
	token, ok := bearerToken(c.GetHeader("Authorization"))
	if !ok {
		c.Header("WWW-Authenticate", authRealm)
		c.AbortWithStatusJSON(http.StatusUnauthorized, errorBody{Code: "missing_api_key",
			Error: "this endpoint needs an API key: send the header Authorization: Bearer <key>"})
		return
	}
	key, ok := h.auth.identify(token)
	if !ok {
		c.Header("WWW-Authenticate", authRealm+`, error="invalid_token"`)
		c.AbortWithStatusJSON(http.StatusUnauthorized, errorBody{Code: "invalid_api_key", Error: "the API key is not valid"})
		return
	}
	ctx := logging.With(c.Request.Context(), slog.String("api_key_id", key.id))
	c.Request = c.Request.WithContext(ctx)
	c.Set(clientKey, key.id)
	if adminRoute(c) && !key.admin {
		h.log.InfoContext(ctx, "admin endpoint refused", slog.String("path", c.Request.URL.Path))
		c.Header("WWW-Authenticate", authRealm+`, error="insufficient_scope", scope="admin"`)
		c.AbortWithStatusJSON(http.StatusForbidden, errorBody{Code: "admin_key_required",
			Error: "the admin endpoints need an admin key (ADMIN_API_KEYS)"})
		return
	}
	c.Next()
}

// bearerToken returns the token of an "Authorization: Bearer <token>"
// header; the scheme is case-insensitive (RFC 7235).
func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
