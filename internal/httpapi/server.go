// Package httpapi is Assay's HTTP interface on Gin: routing, request
// decoding, problem responses and logging. It is the only package that
// imports Gin.
package httpapi

import (
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/fault"
)

// openapiDoc is the OpenAPI 3.1 description of this API; tests check every
// response against it.
//
//go:embed openapi.yaml
var openapiDoc []byte

// Config holds the HTTP layer's limits.
type Config struct {
	// MaxBodyBytes caps a request body; larger bodies get 413.
	MaxBodyBytes int64
}

// Server serves the API.
type Server struct {
	svc    *evaluation.Service
	cfg    Config
	log    *slog.Logger
	engine *gin.Engine
}

// New builds the router.
func New(svc *evaluation.Service, cfg Config, log *slog.Logger) *Server {
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.HandleMethodNotAllowed = true
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false
	s := &Server{svc: svc, cfg: cfg, log: log, engine: e}
	e.Use(s.requestID, s.logRequests, s.recover)

	for _, m := range []string{http.MethodGet, http.MethodHead} {
		e.Handle(m, "/healthz", s.healthz)
		e.Handle(m, "/readyz", s.readyz)
	}
	v1 := e.Group("/v1")
	v1.POST("/evaluations", s.createEvaluation)
	v1.GET("/evaluations", s.listEvaluations)
	v1.GET("/evaluations/:id", s.getEvaluation)
	v1.GET("/rubrics", s.listRubrics)
	v1.GET("/rubrics/search", s.searchRubrics)
	v1.GET("/rubrics/:id", s.getRubric)
	v1.POST("/rubrics", s.createRubric)
	v1.PUT("/rubrics/:id", s.updateRubric)
	v1.DELETE("/rubrics/:id", s.archiveRubric)
	e.GET("/openapi.yaml", func(c *gin.Context) { c.Data(http.StatusOK, "application/yaml", openapiDoc) })

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
	s.log.InfoContext(c.Request.Context(), "request", "method", c.Request.Method, "route", route,
		"status", c.Writer.Status(), "duration_ms", time.Since(start).Milliseconds(), "request_id", requestID(c))
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
