package httpapi_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/assay-dev/assay/internal/evaluation"
)

func TestCreateEvaluation(t *testing.T) {
	f := newFixture(t)
	rec := f.post(map[string]any{"question": rateLimitQuestion, "answer": rateLimitAnswer, "candidate_ref": "cand-1", "metadata": map[string]string{"source": "test"}})
	if rec.Code != http.StatusCreated {
		t.Fatalf("status = %d, want 201; body %s", rec.Code, rec.Body)
	}
	e := decode[evaluation.Evaluation](t, rec)
	if got, want := rec.Header().Get("Location"), "/v1/evaluations/"+e.ID; got != want {
		t.Errorf("Location = %q, want %q", got, want)
	}
	if e.Rubric.ID != "api-rate-limiting" || e.Rubric.MatchedBy != evaluation.MatchedByQuestion {
		t.Errorf("rubric = %+v, want api-rate-limiting matched by question", e.Rubric)
	}
	if len(e.Criteria) == 0 || len(e.FollowUps) == 0 {
		t.Fatalf("criteria %d, follow-ups %d: want both", len(e.Criteria), len(e.FollowUps))
	}
	runes := []rune(rateLimitAnswer)
	quotes := 0
	for _, c := range e.Criteria {
		for _, ev := range c.Evidence {
			quotes++
			if got := string(runes[ev.Start:ev.End]); got != ev.Quote {
				t.Errorf("criterion %s: answer[%d:%d] = %q, want the quote %q", c.ID, ev.Start, ev.End, got, ev.Quote)
			}
		}
	}
	if quotes == 0 {
		t.Error("no evidence quoted")
	}
	golden(t, "create_rate_limiting", rec.Body.Bytes())

	got := f.do(http.MethodGet, "/v1/evaluations/"+e.ID, "", "")
	if got.Code != http.StatusOK {
		t.Fatalf("GET status = %d", got.Code)
	}
	if back := decode[evaluation.Evaluation](t, got); back.ID != e.ID || back.Score != e.Score || back.CandidateRef != "cand-1" {
		t.Errorf("GET returned %+v, want the created evaluation", back)
	}
	// The created response is the encoding the store was given; it must
	// be exactly what reading the evaluation back gives.
	if got.Body.String() != rec.Body.String() {
		t.Errorf("GET body differs from the created response:\n%s\n%s", got.Body, rec.Body)
	}
	for _, r := range []*httptest.ResponseRecorder{rec, got} {
		if ct := r.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
			t.Errorf("Content-Type = %q", ct)
		}
	}
}

func TestCreateEvaluationByRubricIDAndByAnswer(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name   string
		body   map[string]any
		wantBy string
	}{
		{"rubric id", map[string]any{"rubric_id": "api-rate-limiting", "answer": rateLimitAnswer}, evaluation.MatchedByID},
		{"answer only", map[string]any{"answer": rateLimitAnswer}, evaluation.MatchedByAnswer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := f.post(tt.body)
			if rec.Code != http.StatusCreated {
				t.Fatalf("status = %d, want 201; body %s", rec.Code, rec.Body)
			}
			e := decode[evaluation.Evaluation](t, rec)
			if e.Rubric.ID != "api-rate-limiting" || e.Rubric.MatchedBy != tt.wantBy {
				t.Errorf("rubric = %+v, want api-rate-limiting by %s", e.Rubric, tt.wantBy)
			}
		})
	}
}

type problem struct {
	Type       string `json:"type"`
	Title      string `json:"title"`
	Status     int    `json:"status"`
	Detail     string `json:"detail"`
	Instance   string `json:"instance"`
	Errors     []struct{ Pointer, Parameter, Detail string }
	Candidates []struct {
		ID         string  `json:"id"`
		Similarity float64 `json:"similarity"`
	} `json:"candidates"`
}

func TestErrors(t *testing.T) {
	f := newFixture(t)
	long := strings.Repeat("a", 2001)
	huge := `{"answer": "` + strings.Repeat("x", 17<<10) + `"}`
	tests := []struct {
		name        string
		method      string
		path        string
		contentType string
		body        string
		wantStatus  int
		wantType    string
		wantField   string // pointer or parameter of the first error, if any
	}{
		{"malformed JSON", "POST", "/v1/evaluations", "application/json", `{"answer": `, 400, "malformed-request", ""},
		{"not an object", "POST", "/v1/evaluations", "application/json", `[1,2]`, 400, "malformed-request", ""},
		{"two values", "POST", "/v1/evaluations", "application/json", `{"answer":"a"} {}`, 400, "malformed-request", ""},
		{"empty body", "POST", "/v1/evaluations", "application/json", ``, 400, "malformed-request", ""},
		{"unknown field", "POST", "/v1/evaluations", "application/json", `{"answer":"a","score":100}`, 400, "malformed-request", "/score"},
		{"wrong type", "POST", "/v1/evaluations", "application/json", `{"answer": 42}`, 400, "malformed-request", "/answer"},
		{"body too large", "POST", "/v1/evaluations", "application/json", huge, 413, "too-large", ""},
		{"wrong content type", "POST", "/v1/evaluations", "text/plain", `{"answer":"a"}`, 415, "unsupported-media-type", ""},
		{"no content type", "POST", "/v1/evaluations", "", `{"answer":"a"}`, 415, "unsupported-media-type", ""},
		{"missing answer", "POST", "/v1/evaluations", "application/json", `{"question":"What is ACID?"}`, 422, "invalid-field", "/answer"},
		{"empty answer", "POST", "/v1/evaluations", "application/json", `{"answer":"   "}`, 422, "invalid-field", "/answer"},
		{"answer too long", "POST", "/v1/evaluations", "application/json", `{"answer":"` + long + `"}`, 422, "invalid-field", "/answer"},
		{"unknown rubric id", "POST", "/v1/evaluations", "application/json", `{"answer":"a b c","rubric_id":"no-such-rubric"}`, 422, "invalid-field", "/rubric_id"},
		// PostgreSQL cannot store U+0000 in text or JSONB: a clear 422, not a failed insert.
		{"NUL in the answer", "POST", "/v1/evaluations", "application/json", `{"answer":"a \u0000 b"}`, 422, "invalid-field", "/answer"},
		{"NUL in the question", "POST", "/v1/evaluations", "application/json", `{"answer":"a b c","question":"What\u0000?"}`, 422, "invalid-field", "/question"},
		{"NUL in candidate_ref", "POST", "/v1/evaluations", "application/json", `{"answer":"a b c","candidate_ref":"c\u0000"}`, 422, "invalid-field", "/candidate_ref"},
		{"NUL in metadata", "POST", "/v1/evaluations", "application/json", `{"answer":"a b c","metadata":{"k":"v\u0000"}}`, 422, "invalid-field", "/metadata/k"},
		{"NUL in an inline rubric", "POST", "/v1/evaluations", "application/json", `{"answer":"a b c","rubric":{"question":"Q?","criteria":[{"id":"c1","name":"N\u0000","weight":1}]}}`, 422, "invalid-field", "/rubric"},
		{"unknown grader", "POST", "/v1/evaluations", "application/json", `{"answer":"a b c","grader":"oracle"}`, 422, "invalid-field", "/grader"},
		{"no matching rubric", "POST", "/v1/evaluations", "application/json", `{"question":"What is the best pizza place in Naples?","answer":"Da Michele."}`, 422, "no-matching-rubric", "/question"},
		{"unknown evaluation", "GET", "/v1/evaluations/0190f0e0-0000-7000-8000-000000000000", "", "", 404, "not-found", ""},
		{"malformed evaluation id", "GET", "/v1/evaluations/not-a-uuid", "", "", 404, "not-found", ""},
		{"unknown rubric", "GET", "/v1/rubrics/no-such-rubric", "", "", 404, "not-found", ""},
		{"unknown route", "GET", "/v1/nothing-here", "", "", 404, "not-found", ""},
		{"method not allowed", "DELETE", "/v1/evaluations", "", "", 405, "method-not-allowed", ""},
		{"bad limit", "GET", "/v1/evaluations?limit=0", "", "", 400, "invalid-parameter", "limit"},
		{"bad cursor", "GET", "/v1/evaluations?cursor=%21%21", "", "", 400, "invalid-parameter", "cursor"},
		{"search without q", "GET", "/v1/rubrics/search", "", "", 400, "invalid-parameter", "q"},
		{"bad k", "GET", "/v1/rubrics/search?q=cache&k=500", "", "", 400, "invalid-parameter", "k"},
		{"bad rubric version", "GET", "/v1/rubrics/db-acid?version=x", "", "", 400, "invalid-parameter", "version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := f.do(tt.method, tt.path, tt.contentType, tt.body)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tt.wantStatus, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type = %q, want application/problem+json", ct)
			}
			p := decode[problem](t, rec)
			if !strings.HasSuffix(p.Type, "#"+tt.wantType) {
				t.Errorf("type = %q, want ...#%s", p.Type, tt.wantType)
			}
			if p.Status != tt.wantStatus || p.Title == "" || p.Detail == "" {
				t.Errorf("problem = %+v, want status %d with title and detail", p, tt.wantStatus)
			}
			if tt.wantField != "" {
				if len(p.Errors) == 0 {
					t.Fatalf("no errors[], want one for %s", tt.wantField)
				}
				if got := p.Errors[0].Pointer + p.Errors[0].Parameter; got != tt.wantField {
					t.Errorf("errors[0] names %q, want %q", got, tt.wantField)
				}
			}
			if tt.wantType == "no-matching-rubric" && len(p.Candidates) == 0 {
				t.Errorf("no-match problem has no candidates: %s", rec.Body)
			}
		})
	}
}

func TestListEvaluationsPages(t *testing.T) {
	f := newFixture(t)
	const n = 25
	for i := range n {
		ref := "odd"
		if i%2 == 0 {
			ref = "even"
		}
		rec := f.post(map[string]any{"rubric_id": "db-acid", "answer": fmt.Sprintf("Answer %d: atomicity means all or nothing.", i), "candidate_ref": ref})
		if rec.Code != http.StatusCreated {
			t.Fatalf("create %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	tests := []struct {
		query string
		want  int
	}{
		{"limit=7", n},
		{"limit=10&candidate_ref=even", 13},
		{"limit=3&rubric_id=db-acid&candidate_ref=odd", 12},
		{"limit=5&rubric_id=api-pagination", 0},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			seen := map[string]bool{}
			var prev *evaluation.Evaluation
			path := "/v1/evaluations?" + tt.query
			for pages := 0; pages < 50; pages++ {
				rec := f.do("GET", path, "", "")
				if rec.Code != http.StatusOK {
					t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
				}
				page := decode[struct {
					Items      []evaluation.Evaluation `json:"items"`
					NextCursor string                  `json:"next_cursor"`
				}](t, rec)
				for i := range page.Items {
					e := page.Items[i]
					if seen[e.ID] {
						t.Fatalf("evaluation %s seen twice", e.ID)
					}
					seen[e.ID] = true
					if prev != nil && (e.CreatedAt.After(prev.CreatedAt) || (e.CreatedAt.Equal(prev.CreatedAt) && e.ID > prev.ID)) {
						t.Fatalf("not newest first: %s after %s", e.ID, prev.ID)
					}
					prev = &e
				}
				if page.NextCursor == "" {
					break
				}
				path = "/v1/evaluations?" + tt.query + "&cursor=" + page.NextCursor
			}
			if len(seen) != tt.want {
				t.Errorf("listed %d evaluations, want %d", len(seen), tt.want)
			}
		})
	}
}

func TestFollowUpAnswer(t *testing.T) {
	f := newFixture(t)
	rec := f.post(map[string]any{"question": rateLimitQuestion, "answer": rateLimitAnswer})
	if rec.Code != http.StatusCreated {
		t.Fatalf("parent: %d %s", rec.Code, rec.Body)
	}
	parent := decode[evaluation.Evaluation](t, rec)
	if len(parent.FollowUps) < 2 {
		t.Fatalf("parent has %d follow-ups, want at least 2", len(parent.FollowUps))
	}
	fu := parent.FollowUps[1]
	rec = f.post(map[string]any{
		"answer":       "Each replica would check the same Redis bucket with an atomic Lua script, so the limit holds across all ten; if Redis is down we fail open with a local limiter per instance, the limit divided by the replica count.",
		"follow_up_of": map[string]any{"evaluation_id": parent.ID, "index": 1},
	})
	if rec.Code != http.StatusCreated {
		t.Fatalf("follow-up: %d %s", rec.Code, rec.Body)
	}
	child := decode[evaluation.Evaluation](t, rec)
	if child.FollowUpOf == nil || child.FollowUpOf.EvaluationID != parent.ID || child.FollowUpOf.Index != 1 || child.FollowUpOf.Criterion != fu.Criterion {
		t.Fatalf("follow_up_of = %+v, want evaluation %s index 1 criterion %s", child.FollowUpOf, parent.ID, fu.Criterion)
	}
	if len(child.Criteria) != 1 || child.Criteria[0].ID != fu.Criterion {
		t.Errorf("graded criteria %v, want only %s", child.Criteria, fu.Criterion)
	}
	if child.Question != fu.Question || child.Rubric.MatchedBy != evaluation.MatchedFollowUp || child.Rubric.ID != parent.Rubric.ID {
		t.Errorf("child question %q rubric %+v, want the follow-up question and the parent's rubric", child.Question, child.Rubric)
	}

	for _, tt := range []struct {
		name string
		body map[string]any
		ptr  string
	}{
		{"unknown evaluation", map[string]any{"answer": "x y z", "follow_up_of": map[string]any{"evaluation_id": "0190f0e0-0000-7000-8000-000000000000", "index": 0}}, "/follow_up_of/evaluation_id"},
		{"index out of range", map[string]any{"answer": "x y z", "follow_up_of": map[string]any{"evaluation_id": parent.ID, "index": 99}}, "/follow_up_of/index"},
		{"with rubric_id", map[string]any{"answer": "x y z", "rubric_id": "db-acid", "follow_up_of": map[string]any{"evaluation_id": parent.ID, "index": 0}}, "/follow_up_of"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := f.post(tt.body)
			if rec.Code != http.StatusUnprocessableEntity {
				t.Fatalf("status %d, want 422: %s", rec.Code, rec.Body)
			}
			p := decode[problem](t, rec)
			if len(p.Errors) == 0 || p.Errors[0].Pointer != tt.ptr {
				t.Errorf("errors %+v, want pointer %s", p.Errors, tt.ptr)
			}
		})
	}
}
