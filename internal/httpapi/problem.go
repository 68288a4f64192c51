package httpapi

import (
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"sort"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/assay-dev/assay/internal/fault"
)

// ProblemBase is the prefix of every problem type URI; each type is an
// anchor in docs/problems.md.
const ProblemBase = "https://github.com/assay-dev/assay/blob/main/docs/problems.md#"

// Problem is an RFC 9457 problem details object.
type Problem struct {
	Type     string             `json:"type"`
	Title    string             `json:"title"`
	Status   int                `json:"status"`
	Detail   string             `json:"detail,omitempty"`
	Instance string             `json:"instance,omitempty"`
	Errors   []fault.FieldError `json:"errors,omitempty"`
	// Extra members (such as candidates of a no-match problem) sit beside
	// the standard ones, as RFC 9457 allows.
	Extra map[string]any `json:"-"`
}

type problemKind struct {
	status int
	slug   string
	title  string
}

// problems is the one table from error kinds to HTTP: every error a handler
// returns goes through it.
var problems = map[fault.Kind]problemKind{
	fault.Invalid:      {http.StatusUnprocessableEntity, "invalid-field", "A field is invalid"},
	fault.NotFound:     {http.StatusNotFound, "not-found", "Not found"},
	fault.NoMatch:      {http.StatusUnprocessableEntity, "no-matching-rubric", "No matching rubric"},
	fault.Conflict:     {http.StatusConflict, "conflict", "Conflict"},
	fault.Unavailable:  {http.StatusServiceUnavailable, "unavailable", "Service unavailable"},
	fault.Upstream:     {http.StatusBadGateway, "grader-failed", "The grader failed"},
	fault.TooLarge:     {http.StatusRequestEntityTooLarge, "too-large", "Request too large"},
	fault.Unauthorized: {http.StatusUnauthorized, "unauthorized", "Unauthorized"},
	fault.Forbidden:    {http.StatusForbidden, "forbidden", "Forbidden"},
	fault.RateLimited:  {http.StatusTooManyRequests, "rate-limited", "Too many requests"},
	fault.Internal:     {http.StatusInternalServerError, "internal", "Internal server error"},
}

// Problems the transport layer raises itself, before any domain code runs.
var (
	malformed        = problemKind{http.StatusBadRequest, "malformed-request", "Malformed request"}
	badParameter     = problemKind{http.StatusBadRequest, "invalid-parameter", "A parameter is invalid"}
	unsupportedMedia = problemKind{http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type"}
	notAllowed       = problemKind{http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed"}
)

// problemOf converts an error into a problem. Internal errors are logged
// with their cause and shown only as a generic message.
func problemOf(c *gin.Context, log *slog.Logger, err error) Problem {
	var bodyErr *requestError
	if errors.As(err, &bodyErr) {
		return bodyErr.problem()
	}
	fe, ok := fault.As(err)
	if !ok {
		fe = &fault.Error{Kind: fault.Internal, Err: err}
	}
	pk, known := problems[fe.Kind]
	if !known {
		pk = problems[fault.Internal]
	}
	p := Problem{Type: ProblemBase + pk.slug, Title: pk.title, Status: pk.status, Detail: fe.Message, Errors: fe.Fields, Extra: fe.Extra}
	if fe.Kind == fault.Invalid && isParamError(fe.Fields) {
		p.Type, p.Title, p.Status = ProblemBase+badParameter.slug, badParameter.title, badParameter.status
	}
	if fe.RetryAfter > 0 {
		c.Header("Retry-After", strconv.Itoa(int(math.Ceil(fe.RetryAfter.Seconds()))))
	}
	if pk.status >= 500 {
		// The cause may hold SQL, hosts or provider replies: log it, never
		// send it.
		log.ErrorContext(c.Request.Context(), "request failed", "kind", fe.Kind.String(), "err", err, "request_id", requestID(c))
		if fe.Kind == fault.Internal || p.Detail == "" {
			p.Detail = "An unexpected error occurred; it has been logged with request id " + requestID(c) + "."
		}
	}
	return p
}

func isParamError(fs []fault.FieldError) bool {
	return len(fs) > 0 && fs[0].Parameter != ""
}

// writeProblem sends p as application/problem+json.
func writeProblem(c *gin.Context, p Problem) {
	if p.Instance == "" {
		p.Instance = c.Request.URL.Path
	}
	body, err := p.MarshalJSON()
	if err != nil {
		body = []byte(`{"title":"Internal server error","status":500}`)
	}
	c.Header("Content-Type", "application/problem+json")
	c.Status(p.Status)
	_, _ = c.Writer.Write(body)
	c.Abort()
}

func (s *Server) fail(c *gin.Context, err error) {
	writeProblem(c, problemOf(c, s.log, err))
}

// MarshalJSON writes the standard members in RFC 9457's order, then the
// extension members sorted by name.
func (p Problem) MarshalJSON() ([]byte, error) {
	type plain Problem // no MarshalJSON: avoids recursion
	b, err := json.Marshal(plain(p))
	if err != nil || len(p.Extra) == 0 {
		return b, err
	}
	keys := make([]string, 0, len(p.Extra))
	for k := range p.Extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b = b[:len(b)-1]
	for _, k := range keys {
		switch k {
		case "type", "title", "status", "detail", "instance", "errors":
			continue // extensions cannot replace standard members
		}
		kb, _ := json.Marshal(k)
		vb, err := json.Marshal(p.Extra[k])
		if err != nil {
			return nil, err
		}
		b = append(append(append(append(b, ','), kb...), ':'), vb...)
	}
	return append(b, '}'), nil
}
