// Package httpapi is Assay's HTTP interface on Gin: routing, request
// decoding, problem responses and logging. It is the only package that
// imports Gin.
package httpapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"regexp"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/sync/semaphore"
	"gopkg.in/yaml.v3"

	"github.com/assay-dev/assay/internal/auth"
	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/fault"
	"github.com/assay-dev/assay/internal/idempotency"
	"github.com/assay-dev/assay/internal/metrics"
	"github.com/assay-dev/assay/internal/ratelimit"
)

// openapiDoc is the OpenAPI 3.1 description of this API; tests check every
// response against it.
//
//go:embed openapi.yaml
var openapiDoc []byte

// Config holds the HTTP layer's dependencies and limits.
type Config struct {
	// MaxBodyBytes caps a request body; larger bodies get 413.
	MaxBodyBytes int64
	// RequestTimeout bounds each request, grading included.
	RequestTimeout time.Duration
	Auth           *auth.Authenticator
	Limiter        ratelimit.Limiter
	DefaultLimit   ratelimit.Limit
	Idempotency    idempotency.Store
	// CORSOrigins are the origins browsers may call from; "*" allows any.
	CORSOrigins []string
	Metrics     *metrics.Metrics
	// Async, when set, enables Prefer: respond-async, batches, regrades and
	// event streams (async.go, events.go); Events feeds the streams and
	// Heartbeat spaces their keep-alive comments (default 15s).
	Async     *evaluation.Async
	Events    EventSource
	Heartbeat time.Duration
	// Web holds the practice page, index.html and assets/, served at / and
	// /assets/; nil serves no page.
	Web fs.FS
	// MaxGradings bounds the evaluation requests in progress at once; the
	// others wait for a slot (admit.go). 0 is no bound.
	MaxGradings int
}

// Server serves the API.
type Server struct {
	svc    *evaluation.Service
	cfg    Config
	log    *slog.Logger
	engine *gin.Engine
	// closing ends the event streams on shutdown (events.go).
	closing chan struct{}
	// gradings holds MaxGradings slots; nil when unbounded.
	gradings *semaphore.Weighted
}

// New builds the router. Missing dependencies get in-process defaults: an
// open API, an in-memory limiter and idempotency store, fresh metrics.
func New(svc *evaluation.Service, cfg Config, log *slog.Logger) *Server {
	if cfg.Auth == nil {
		cfg.Auth = auth.NewAuthenticator(noKeys{}, false)
	}
	if cfg.Limiter == nil {
		cfg.Limiter = ratelimit.NewMemory()
	}
	if cfg.DefaultLimit.RPS <= 0 || cfg.DefaultLimit.Burst < 1 {
		cfg.DefaultLimit = ratelimit.Limit{RPS: 10, Burst: 20}
	}
	if cfg.Idempotency == nil {
		cfg.Idempotency = idempotency.NewMemory()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.New()
	}
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.HandleMethodNotAllowed = true
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false
	// Trust no proxy header: an open API rate-limits by client address,
	// which X-Forwarded-For would otherwise let every client choose.
	_ = e.SetTrustedProxies(nil)
	s := &Server{svc: svc, cfg: cfg, log: log, engine: e}
	if cfg.MaxGradings > 0 {
		s.gradings = semaphore.NewWeighted(int64(cfg.MaxGradings))
	}
	e.Use(s.requestID, securityHeaders, s.cors, s.logRequests, s.recover, s.deadline)

	for _, m := range []string{http.MethodGet, http.MethodHead} {
		e.Handle(m, "/healthz", s.healthz)
		e.Handle(m, "/readyz", s.readyz)
	}
	e.GET("/metrics", gin.WrapH(cfg.Metrics.Handler()))
	e.GET("/openapi.yaml", func(c *gin.Context) { c.Data(http.StatusOK, "application/yaml", openapiDoc) })
	openapiJSON := yamlToJSON(openapiDoc)
	e.GET("/v1/openapi.json", func(c *gin.Context) { c.Data(http.StatusOK, "application/json", openapiJSON) })

	if cfg.Web != nil {
		for _, m := range []string{http.MethodGet, http.MethodHead} {
			e.Handle(m, "/", func(c *gin.Context) { s.webFile(c, "index.html") })
			e.Handle(m, "/assets/*path", func(c *gin.Context) { s.webFile(c, "assets"+c.Param("path")) })
		}
	}

	v1 := e.Group("/v1", s.authenticate, s.rateLimit)
	grade, admin := s.require(auth.ScopeGrade), s.require(auth.ScopeAdmin)
	v1.POST("/evaluations", grade, s.admit, s.idempotent, s.createEvaluation)
	v1.GET("/evaluations", grade, s.listEvaluations)
	v1.GET("/evaluations/:id", grade, s.getEvaluation)
	v1.GET("/rubrics", grade, s.listRubrics)
	v1.GET("/rubrics/search", grade, s.searchRubrics)
	v1.GET("/rubrics/:id", grade, s.getRubric)
	v1.POST("/rubrics", admin, s.createRubric)
	v1.PUT("/rubrics/:id", admin, s.updateRubric)
	v1.DELETE("/rubrics/:id", admin, s.archiveRubric)
	s.asyncRoutes(v1, grade, admin)

	e.NoRoute(func(c *gin.Context) {
		s.fail(c, fault.New(fault.NotFound, "no route for %s %s", c.Request.Method, c.Request.URL.Path))
	})
	e.NoMethod(func(c *gin.Context) {
		writeProblem(c, Problem{Type: ProblemBase + notAllowed.slug, Title: notAllowed.title, Status: notAllowed.status,
			Detail: fmt.Sprintf("%s is not allowed on %s", c.Request.Method, c.Request.URL.Path)})
	})
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.engine.ServeHTTP(w, r) }

func (s *Server) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

func (s *Server) readyz(c *gin.Context) {
	if err := s.svc.Ready(c.Request.Context()); err != nil {
		s.log.WarnContext(c.Request.Context(), "not ready", "err", err)
		s.fail(c, fault.Wrap(err, fault.Unavailable, "a dependency is not ready"))
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}

const requestIDHeader = "X-Request-Id"

// validRequestID accepts the ids proxies and clients commonly send, and
// nothing that could forge log fields or headers.
var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

// requestID tags each request so a client can quote it and an operator can
// find the log line.
func (s *Server) requestID(c *gin.Context) {
	id := c.GetHeader(requestIDHeader)
	if !validRequestID.MatchString(id) {
		var b [8]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	c.Set(requestIDHeader, id)
	c.Header(requestIDHeader, id)
	c.Next()
}

func requestID(c *gin.Context) string { return c.GetString(requestIDHeader) }

// logRequests writes one line per request: method, route, status and
// latency. It never logs bodies, query strings or headers, which may hold
// answers and keys.
func (s *Server) logRequests(c *gin.Context) {
	start := time.Now()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	d := time.Since(start)
	s.cfg.Metrics.Request(route, c.Request.Method, c.Writer.Status(), d)
	s.log.InfoContext(c.Request.Context(), "request", "method", c.Request.Method, "route", route,
		"status", c.Writer.Status(), "duration_ms", d.Milliseconds(), "request_id", requestID(c))
}

// recover turns a panic into a 500 problem that shows no internals.
func (s *Server) recover(c *gin.Context) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.fail(c, fmt.Errorf("panic: %v", v))
		}
	}()
	c.Next()
}

// webCSP lets the practice page load only its own files and call only its
// own origin: no inline script, so injected markup could not run.
const webCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// webFile serves one file of the practice page; a missing one (or a
// folder) is the usual 404 problem.
func (s *Server) webFile(c *gin.Context, name string) {
	b, err := fs.ReadFile(s.cfg.Web, name)
	if !fs.ValidPath(name) || err != nil {
		s.fail(c, fault.New(fault.NotFound, "no route for %s %s", c.Request.Method, c.Request.URL.Path))
		return
	}
	h := c.Writer.Header()
	if ct := mime.TypeByExtension(path.Ext(name)); ct != "" {
		h.Set("Content-Type", ct)
	}
	sum := sha256.Sum256(b)
	h.Set("ETag", `"`+hex.EncodeToString(sum[:12])+`"`)
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Security-Policy", webCSP)
	http.ServeContent(c.Writer, c.Request, name, time.Time{}, bytes.NewReader(b))
}

// noKeys is the key store of a server built without one: no keys, so the
// API runs open.
type noKeys struct{}

func (noKeys) CreateKey(context.Context, auth.Key) error {
	return fault.New(fault.Invalid, "no key store")
}
func (noKeys) Key(_ context.Context, id string) (auth.Key, error) {
	return auth.Key{}, fault.New(fault.NotFound, "key %q not found", id)
}
func (noKeys) ListKeys(context.Context) ([]auth.Key, error)       { return nil, nil }
func (noKeys) RevokeKey(context.Context, string, time.Time) error { return nil }
func (noKeys) HasKeys(context.Context) (bool, error)              { return false, nil }

// yamlToJSON converts the embedded OpenAPI document once, at start-up; a
// test checks that it converts.
func yamlToJSON(doc []byte) []byte {
	var v any
	if err := yaml.Unmarshal(doc, &v); err != nil {
		return []byte(`{"error":"the OpenAPI document does not parse"}`)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return []byte(`{"error":"the OpenAPI document does not convert to JSON"}`)
	}
	return b
}
