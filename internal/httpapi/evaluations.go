package httpapi

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/fault"
	"github.com/assay-dev/assay/internal/rubric"
)

// createRequest is the body of POST /v1/evaluations. Pointers tell a
// missing field from an empty one where the difference matters.
type createRequest struct {
	Answer       *string           `json:"answer"`
	Question     string            `json:"question"`
	RubricID     string            `json:"rubric_id"`
	CandidateRef string            `json:"candidate_ref"`
	Metadata     map[string]string `json:"metadata"`
	Grader       string            `json:"grader"`
	Rubric       *inlineRubric     `json:"rubric"`
	Samples      int               `json:"samples"`
	FollowUpOf   *followUpOf       `json:"follow_up_of"`
	// CallbackURL receives the result of an asynchronous request (async.go).
	CallbackURL string `json:"callback_url"`
}

// followUpOf names a follow-up question of an earlier evaluation.
type followUpOf struct {
	EvaluationID string `json:"evaluation_id"`
	Index        int    `json:"index"`
}

// inlineRubric is a rubric sent with the request instead of one from the
// bank.
type inlineRubric struct {
	Question        string             `json:"question"`
	ReferenceAnswer string             `json:"reference_answer"`
	Criteria        []rubric.Criterion `json:"criteria"`
}

// jsonContentType is what gin's c.JSON sends, for bodies encoded already.
const jsonContentType = "application/json; charset=utf-8"

func (s *Server) createEvaluation(c *gin.Context) {
	var req createRequest
	if err := s.decodeJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	if req.Answer == nil {
		s.fail(c, fault.Field("/answer", "is required"))
		return
	}
	er := evaluationRequest(c, req)
	if s.respondAsync(c, er, req.CallbackURL) {
		return
	}
	e, err := s.svc.Evaluate(c.Request.Context(), er)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Location", "/v1/evaluations/"+e.ID)
	if e.JSON != nil {
		// The encoding the store wrote: the response is the stored body.
		c.Data(http.StatusCreated, jsonContentType, e.JSON)
		return
	}
	c.JSON(http.StatusCreated, e)
}

// evaluationRequest maps a create request (its answer checked present)
// to the service's request, for the synchronous, asynchronous and batch
// paths alike.
func evaluationRequest(c *gin.Context, req createRequest) evaluation.Request {
	er := evaluation.Request{
		Answer: *req.Answer, Question: req.Question, RubricID: req.RubricID,
		CandidateRef: req.CandidateRef, Metadata: req.Metadata, Grader: req.Grader, Samples: req.Samples,
		APIKeyID: caller(c).ID, Owner: owner(c), NoCache: noCache(c.GetHeader("Cache-Control")),
	}
	if req.FollowUpOf != nil {
		er.FollowUpOf = &evaluation.FollowUpRef{EvaluationID: req.FollowUpOf.EvaluationID, Index: req.FollowUpOf.Index}
	}
	if req.Rubric != nil {
		er.Inline = &evaluation.InlineRubric{Question: req.Rubric.Question, ReferenceAnswer: req.Rubric.ReferenceAnswer, Criteria: req.Rubric.Criteria}
	}
	return er
}

func (s *Server) getEvaluation(c *gin.Context) {
	e, err := s.svc.Get(c.Request.Context(), c.Param("id"), owner(c))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, e)
}

// page is the shape of every list response.
type page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

func (s *Server) listEvaluations(c *gin.Context) {
	limit, err := limitParam(c, "limit", 20, 100)
	if err != nil {
		s.fail(c, err)
		return
	}
	f := evaluation.EvaluationFilter{APIKeyID: owner(c), RubricID: c.Query("rubric_id"), CandidateRef: c.Query("candidate_ref"), Limit: limit}
	if cur := c.Query("cursor"); cur != "" {
		f.After = &evaluation.Cursor{}
		if err := evaluation.DecodeCursor(cur, f.After); err != nil {
			s.fail(c, err)
			return
		}
	}
	es, next, err := s.svc.List(c.Request.Context(), f)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, page[evaluation.Evaluation]{Items: es, NextCursor: next})
}

// limitParam reads a positive integer query parameter with a default and a
// maximum.
func limitParam(c *gin.Context, name string, def, maxValue int) (int, error) {
	raw, ok := c.GetQuery(name)
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || n > maxValue {
		return 0, fault.Param(name, "must be an integer from 1 to "+strconv.Itoa(maxValue))
	}
	return n, nil
}

// noCache reports whether a Cache-Control header asks for a fresh grading.
func noCache(h string) bool {
	for _, d := range strings.Split(h, ",") {
		if d = strings.ToLower(strings.TrimSpace(d)); d == "no-cache" || d == "no-store" {
			return true
		}
	}
	return false
}
