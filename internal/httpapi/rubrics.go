package httpapi

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/assay-dev/assay/internal/auth"
	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/fault"
	"github.com/assay-dev/assay/internal/rubric"
)

// rubricSummary is a rubric in lists and search results.
type rubricSummary struct {
	ID       string   `json:"id"`
	Version  int      `json:"version"`
	Title    string   `json:"title"`
	Question string   `json:"question"`
	Tags     []string `json:"tags"`
	Level    string   `json:"level"`
}

func summarise(r rubric.Rubric) rubricSummary {
	tags := r.Tags
	if tags == nil {
		tags = []string{}
	}
	return rubricSummary{ID: r.ID, Version: r.Version, Title: r.Title, Question: r.Question, Tags: tags, Level: r.Level}
}

func (s *Server) listRubrics(c *gin.Context) {
	limit, err := limitParam(c, "limit", 50, 100)
	if err != nil {
		s.fail(c, err)
		return
	}
	f := evaluation.RubricFilter{Tag: c.Query("tag"), Limit: limit}
	if cur := c.Query("cursor"); cur != "" {
		if err := evaluation.DecodeCursor(cur, &f.After); err != nil {
			s.fail(c, err)
			return
		}
	}
	rs, next, err := s.svc.ListRubrics(c.Request.Context(), f)
	if err != nil {
		s.fail(c, err)
		return
	}
	items := make([]rubricSummary, len(rs))
	for i, r := range rs {
		items[i] = summarise(r)
	}
	c.JSON(http.StatusOK, page[rubricSummary]{Items: items, NextCursor: next})
}

func (s *Server) getRubric(c *gin.Context) {
	id := c.Param("id")
	var (
		r   rubric.Rubric
		err error
	)
	if v, ok := c.GetQuery("version"); ok {
		n, convErr := strconv.Atoi(v)
		if convErr != nil || n < 1 {
			s.fail(c, fault.Param("version", "must be a positive integer"))
			return
		}
		r, err = s.svc.RubricVersion(c.Request.Context(), id, n)
	} else {
		r, err = s.svc.Rubric(c.Request.Context(), id)
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	if !caller(c).Has(auth.ScopeAdmin) {
		// Candidates see what will be graded, not the answer key.
		c.JSON(http.StatusOK, candidateView(r.Public()))
		return
	}
	c.JSON(http.StatusOK, r)
}

// publicRubric is the candidate's view of a rubric: rubric.Public without
// the members it empties, so that the answer key's fields are absent rather
// than present and blank.
type publicRubric struct {
	ID       string            `json:"id"`
	Version  int               `json:"version"`
	Title    string            `json:"title"`
	Question string            `json:"question"`
	Aliases  []string          `json:"aliases"`
	Tags     []string          `json:"tags"`
	Level    string            `json:"level"`
	Criteria []publicCriterion `json:"criteria"`
}

type publicCriterion struct {
	ID          string  `json:"id"`
	Name        string  `json:"name"`
	Weight      float64 `json:"weight"`
	Description string  `json:"description"`
}

func candidateView(r rubric.Rubric) publicRubric {
	out := publicRubric{ID: r.ID, Version: r.Version, Title: r.Title, Question: r.Question,
		Aliases: r.Aliases, Tags: r.Tags, Level: r.Level, Criteria: make([]publicCriterion, len(r.Criteria))}
	for i, c := range r.Criteria {
		out.Criteria[i] = publicCriterion{ID: c.ID, Name: c.Name, Weight: c.Weight, Description: c.Description}
	}
	return out
}

type searchHit struct {
	Rubric     rubricSummary `json:"rubric"`
	Similarity float64       `json:"similarity"`
}

func (s *Server) searchRubrics(c *gin.Context) {
	q := strings.TrimSpace(c.Query("q"))
	if q == "" {
		s.fail(c, fault.Param("q", "is required"))
		return
	}
	if utf8.RuneCountInString(q) > evaluation.MaxQuestionRunes {
		s.fail(c, fault.Param("q", fmt.Sprintf("must be at most %d characters", evaluation.MaxQuestionRunes)))
		return
	}
	k, err := limitParam(c, "k", 5, 20)
	if err != nil {
		s.fail(c, err)
		return
	}
	ms, err := s.svc.Search(c.Request.Context(), q, k)
	if err != nil {
		s.fail(c, err)
		return
	}
	items := make([]searchHit, len(ms))
	for i, m := range ms {
		items[i] = searchHit{Rubric: summarise(m.Rubric), Similarity: m.Similarity}
	}
	c.JSON(http.StatusOK, gin.H{"items": items})
}

func (s *Server) createRubric(c *gin.Context) {
	var r rubric.Rubric
	if err := s.decodeJSON(c, &r); err != nil {
		s.fail(c, err)
		return
	}
	out, err := s.svc.CreateRubric(c.Request.Context(), r)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Location", "/v1/rubrics/"+out.ID)
	c.JSON(http.StatusCreated, out)
}

func (s *Server) updateRubric(c *gin.Context) {
	var r rubric.Rubric
	if err := s.decodeJSON(c, &r); err != nil {
		s.fail(c, err)
		return
	}
	out, err := s.svc.UpdateRubric(c.Request.Context(), c.Param("id"), r)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, out)
}

func (s *Server) archiveRubric(c *gin.Context) {
	if err := s.svc.ArchiveRubric(c.Request.Context(), c.Param("id")); err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
