package httpapi

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/fault"
)

// Asynchronous grading: Prefer: respond-async on POST /v1/evaluations,
// batches, regrades and their reports. The event stream is in events.go.

// asyncRoutes adds the asynchronous routes when the server has a queue.
func (s *Server) asyncRoutes(v1 *gin.RouterGroup, grade, admin gin.HandlerFunc) {
	s.closing = make(chan struct{})
	if s.cfg.Async == nil {
		return
	}
	v1.POST("/evaluations/batch", grade, s.idempotent, s.createBatch)
	v1.GET("/evaluations/:id/events", grade, s.evaluationEvents)
	v1.GET("/batches/:id", grade, s.getBatch)
	v1.POST("/rubrics/:id/regrade", admin, s.createRegrade)
	v1.GET("/regrades/:id", admin, s.getRegrade)
}

// prefersAsync reports whether a Prefer header (RFC 7240) asks for
// respond-async.
func prefersAsync(h string) bool {
	for _, p := range strings.Split(h, ",") {
		name, _, _ := strings.Cut(p, ";")
		if strings.EqualFold(strings.TrimSpace(name), "respond-async") {
			return true
		}
	}
	return false
}

// respondAsync answers a create request with 202 and a queued evaluation
// when the client prefers it and the server can; it reports whether it
// answered. A callback needs the asynchronous path.
func (s *Server) respondAsync(c *gin.Context, er evaluation.Request, callback string) bool {
	if !prefersAsync(c.GetHeader("Prefer")) || s.cfg.Async == nil {
		if callback != "" {
			s.fail(c, fault.Field("/callback_url", "needs the header Prefer: respond-async"))
			return true
		}
		return false
	}
	e, err := s.cfg.Async.Submit(c.Request.Context(), evaluation.Submission{Request: er, CallbackURL: callback})
	if err != nil {
		s.fail(c, err)
		return true
	}
	c.Header("Preference-Applied", "respond-async")
	c.Header("Location", "/v1/evaluations/"+e.ID)
	c.JSON(http.StatusAccepted, e)
	return true
}

// batchRequest is the body of POST /v1/evaluations/batch.
type batchRequest struct {
	Items []createRequest `json:"items"`
}

// batchView is a batch as the API shows it.
type batchView struct {
	evaluation.Batch
	Status      string      `json:"status"`
	Evaluations []batchItem `json:"evaluations"`
}

type batchItem struct {
	ID       string   `json:"id"`
	Status   string   `json:"status"`
	Score    *float64 `json:"score,omitempty"`
	Location string   `json:"location"`
}

func viewBatch(b evaluation.Batch, es []evaluation.Evaluation) batchView {
	v := batchView{Batch: b, Status: b.Status(), Evaluations: make([]batchItem, len(es))}
	for i, e := range es {
		v.Evaluations[i] = batchItem{ID: e.ID, Status: e.Status, Location: "/v1/evaluations/" + e.ID}
		if e.Status == evaluation.StatusCompleted {
			score := e.Score.Overall
			v.Evaluations[i].Score = &score
		}
	}
	return v
}

func (s *Server) createBatch(c *gin.Context) {
	var req batchRequest
	if err := s.decodeJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	subs := make([]evaluation.Submission, len(req.Items))
	for i, item := range req.Items {
		if item.Answer == nil {
			s.fail(c, fault.Field("/items/"+strconv.Itoa(i)+"/answer", "is required"))
			return
		}
		subs[i] = evaluation.Submission{Request: evaluationRequest(c, item), CallbackURL: item.CallbackURL}
	}
	b, es, err := s.cfg.Async.SubmitBatch(c.Request.Context(), subs, caller(c).ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Location", "/v1/batches/"+b.ID)
	c.JSON(http.StatusAccepted, viewBatch(b, es))
}

func (s *Server) getBatch(c *gin.Context) {
	b, es, err := s.cfg.Async.Batch(c.Request.Context(), c.Param("id"), owner(c))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, viewBatch(b, es))
}

func (s *Server) createRegrade(c *gin.Context) {
	b, err := s.cfg.Async.Regrade(c.Request.Context(), c.Param("id"), caller(c).ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Location", "/v1/regrades/"+b.ID)
	c.JSON(http.StatusAccepted, evaluation.RegradeReport{Batch: b, Status: b.Status(),
		Changes: evaluation.Summarize(nil), Items: []evaluation.RegradeItem{}})
}

func (s *Server) getRegrade(c *gin.Context) {
	rep, err := s.cfg.Async.RegradeReport(c.Request.Context(), c.Param("id"), owner(c))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, rep)
}

// ErrorProblem turns the error of a failed background grading into the
// problem stored in its evaluation, through the same table as responses,
// so that a failed asynchronous evaluation says what a synchronous request
// would have answered. Internal causes are not shown.
func ErrorProblem(err error) evaluation.Problem {
	fe, ok := fault.As(err)
	if !ok {
		fe = &fault.Error{Kind: fault.Internal, Err: err}
	}
	pk, known := problems[fe.Kind]
	if !known {
		pk = problems[fault.Internal]
	}
	p := evaluation.Problem{Type: ProblemBase + pk.slug, Title: pk.title, Status: pk.status, Detail: fe.Message, Errors: fe.Fields}
	if fe.Kind == fault.Internal || p.Detail == "" {
		p.Detail = "An unexpected error occurred while grading; it has been logged with the evaluation id."
	}
	return p
}
