package httpapi

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/assay-dev/assay/internal/auth"
	"github.com/assay-dev/assay/internal/fault"
	"github.com/assay-dev/assay/internal/ratelimit"
)

const callerKey = "assay.caller"

// authenticate finds the caller from the bearer token. With no key at all
// (and ASSAY_REQUIRE_AUTH unset) the API runs open and every caller is an
// anonymous admin.
func (s *Server) authenticate(c *gin.Context) {
	ctx := c.Request.Context()
	open, err := s.cfg.Auth.Open(ctx)
	if err != nil {
		s.fail(c, fault.Wrap(err, fault.Unavailable, "cannot check API keys right now"))
		return
	}
	if open {
		c.Set(callerKey, auth.Anonymous)
		c.Next()
		return
	}
	// The scheme is case-insensitive (RFC 9110, section 11.1).
	scheme, token, ok := strings.Cut(c.GetHeader("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		s.unauthorized(c, fault.New(fault.Unauthorized, "send an API key as Authorization: Bearer KEY"))
		return
	}
	k, err := s.cfg.Auth.Authenticate(ctx, strings.TrimSpace(token))
	if err != nil {
		s.unauthorized(c, err)
		return
	}
	c.Set(callerKey, k)
	c.Next()
}

func (s *Server) unauthorized(c *gin.Context, err error) {
	if fault.KindOf(err) == fault.Unauthorized {
		c.Header("WWW-Authenticate", `Bearer realm="assay"`)
	}
	s.fail(c, err)
}

func caller(c *gin.Context) auth.Key {
	if v, ok := c.Get(callerKey); ok {
		return v.(auth.Key)
	}
	return auth.Key{}
}

// require lets the request through only when the caller holds scope.
func (s *Server) require(scope string) gin.HandlerFunc {
	return func(c *gin.Context) {
		if !caller(c).Has(scope) {
			s.fail(c, fault.New(fault.Forbidden, "this API key lacks the %q scope", scope))
			return
		}
		c.Next()
	}
}

// owner is the key whose evaluations the caller may see: its own, or all
// ("") for an admin.
func owner(c *gin.Context) string {
	k := caller(c)
	if k.Has(auth.ScopeAdmin) {
		return ""
	}
	return k.ID
}

// rateLimit takes a token from the caller's bucket (by key, or by client
// address when the API runs open) and reports the state in the RateLimit
// headers of every response.
func (s *Server) rateLimit(c *gin.Context) {
	k := caller(c)
	limit := s.cfg.DefaultLimit
	if k.RateRPS > 0 && k.RateBurst > 0 {
		limit = ratelimit.Limit{RPS: k.RateRPS, Burst: k.RateBurst}
	}
	bucket := "key:" + k.ID
	if k.ID == "" {
		bucket = "ip:" + c.ClientIP()
	}
	d, err := s.cfg.Limiter.Take(c.Request.Context(), bucket, limit)
	if err != nil {
		// A limiter outage should not take the API down with it: log it
		// and let the request through.
		s.log.WarnContext(c.Request.Context(), "rate limiter unavailable; request allowed", "err", err)
		c.Next()
		return
	}
	c.Header("RateLimit-Limit", strconv.Itoa(d.Limit))
	c.Header("RateLimit-Remaining", strconv.Itoa(d.Remaining))
	c.Header("RateLimit-Reset", strconv.Itoa(ceilSeconds(d.Reset.Seconds())))
	if !d.Allowed {
		s.cfg.Metrics.RateLimited()
		s.fail(c, &fault.Error{Kind: fault.RateLimited, Message: "too many requests for this API key; slow down", RetryAfter: d.RetryAfter})
		return
	}
	c.Next()
}

func ceilSeconds(s float64) int {
	n := int(s)
	if float64(n) < s {
		n++
	}
	return n
}

// deadline bounds each request, grading included, so a stuck dependency
// cannot hold a connection forever.
func (s *Server) deadline(c *gin.Context) {
	// An event stream lasts as long as its grading, which a request
	// deadline would cut short; it ends itself (events.go).
	if s.cfg.RequestTimeout <= 0 || c.FullPath() == eventsRoute {
		c.Next()
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.cfg.RequestTimeout)
	defer cancel()
	c.Request = c.Request.WithContext(ctx)
	c.Next()
}

// securityHeaders are safe defaults for an API that browsers may call.
func securityHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	c.Next()
}

// cors answers browsers from the allowed origins. Other origins get no CORS
// headers, so the browser blocks them.
func (s *Server) cors(c *gin.Context) {
	origin := c.GetHeader("Origin")
	if origin == "" || !(slices.Contains(s.cfg.CORSOrigins, origin) || slices.Contains(s.cfg.CORSOrigins, "*")) {
		c.Next()
		return
	}
	h := c.Writer.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
	h.Set("Access-Control-Expose-Headers", "Location, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, X-Request-Id, Idempotent-Replayed, Preference-Applied")
	if c.Request.Method == http.MethodOptions && c.GetHeader("Access-Control-Request-Method") != "" {
		h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Idempotency-Key, Cache-Control, Prefer, X-Request-Id")
		h.Set("Access-Control-Max-Age", "600")
		c.AbortWithStatus(http.StatusNoContent)
		return
	}
	c.Next()
}
