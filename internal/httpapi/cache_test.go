package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/fault"
	"github.com/assay-dev/assay/internal/memory"
)

// TestEvaluationCache checks that an identical request reuses the grading
// without calling the grader, and what counts as identical.
func TestEvaluationCache(t *testing.T) {
	counting := newCountingGrader("counting")
	store := memory.New()
	f := newFixtureWithGraders(t, store, counting)

	const answer = "Atomicity means all or nothing: if the transaction fails, every change is rolled back."
	req := func(answer, rubricID string) string {
		return jsonBody(t, map[string]any{"rubric_id": rubricID, "answer": answer, "grader": "counting"})
	}

	var original evaluation.Evaluation
	seen := map[string]bool{}
	tests := []struct {
		name         string
		body         string
		cacheControl string
		wantCached   bool
		wantGradings int64
	}{
		{"first request grades", req(answer, "db-acid"), "", false, 1},
		{"identical request is served from the cache", req(answer, "db-acid"), "", true, 1},
		{"again", req(answer, "db-acid"), "", true, 1},
		{"surrounding white space and CRLF are normalised", req("\r\n  "+answer+"  \r\n", "db-acid"), "", true, 1},
		{"other metadata still hits", jsonBody(t, map[string]any{"rubric_id": "db-acid", "answer": answer, "grader": "counting", "candidate_ref": "c-9", "metadata": map[string]string{"k": "v"}}), "", true, 1},
		{"Cache-Control: no-cache grades afresh", req(answer, "db-acid"), "no-cache", false, 2},
		{"no-store grades afresh", req(answer, "db-acid"), "no-store", false, 3},
		{"no-cache among other directives", req(answer, "db-acid"), "max-age=0, No-Cache", false, 4},
		{"an unrelated directive uses the cache", req(answer, "db-acid"), "max-age=60", true, 4},
		{"another answer misses", req(answer+" Durability means it survives a crash.", "db-acid"), "", false, 5},
		{"another rubric misses", req(answer, "api-rate-limiting"), "", false, 6},
		{"another grader misses", jsonBody(t, map[string]any{"rubric_id": "db-acid", "answer": answer, "grader": "heuristic"}), "", false, 6},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var kv []string
			if tt.cacheControl != "" {
				kv = []string{"Cache-Control", tt.cacheControl}
			}
			rec := f.send("POST", "/v1/evaluations", tt.body, kv...)
			if rec.Code != http.StatusCreated {
				t.Fatalf("status = %d, want 201; body %s", rec.Code, rec.Body)
			}
			e := decode[evaluation.Evaluation](t, rec)
			if e.Cached != tt.wantCached {
				t.Errorf("cached = %v, want %v", e.Cached, tt.wantCached)
			}
			if got := counting.calls.Load(); got != tt.wantGradings {
				t.Errorf("gradings = %d, want %d", got, tt.wantGradings)
			}
			if seen[e.ID] {
				t.Errorf("id %s was returned before; every request stores a new evaluation", e.ID)
			}
			seen[e.ID] = true
			if got := rec.Header().Get("Location"); got != "/v1/evaluations/"+e.ID {
				t.Errorf("Location = %q, want the new evaluation", got)
			}
			if i == 0 {
				original = e
			}
			if tt.wantCached {
				if e.Score != original.Score || mustJSON(t, e.Criteria) != mustJSON(t, original.Criteria) ||
					mustJSON(t, e.FollowUps) != mustJSON(t, original.FollowUps) || e.Feedback != original.Feedback {
					t.Errorf("the cached grading differs from the original:\ngot  %+v %s\nwant %+v %s", e.Score, mustJSON(t, e.Criteria), original.Score, mustJSON(t, original.Criteria))
				}
				if e.Grader.LatencyMS != 0 {
					t.Errorf("latency_ms = %d on a cache hit, want 0", e.Grader.LatencyMS)
				}
			}
			// What is stored is what was returned.
			got := f.do("GET", "/v1/evaluations/"+e.ID, "", "")
			if back := decode[evaluation.Evaluation](t, got); back.Cached != e.Cached || back.Score != e.Score {
				t.Errorf("GET returned cached %v score %+v, want %v %+v", back.Cached, back.Score, e.Cached, e.Score)
			}
		})
	}
	if got, want := countEvaluations(t, store), len(tests); got != want {
		t.Errorf("stored evaluations = %d, want %d", got, want)
	}
}

// TestRejectedRequestStoresNothing sends requests that fail at each stage
// and checks that none stores an evaluation or primes the cache.
func TestRejectedRequestStoresNothing(t *testing.T) {
	store := memory.New()
	counting := newCountingGrader("counting")
	f := newFixtureWithGraders(t, store, counting,
		stubGrader{kind: "broken"}, // grades no criterion: an invalid grading
		stubGrader{kind: "down", err: fault.New(fault.Unavailable, "the grading model is unavailable")},
	)
	valid := `{"rubric_id":"db-acid","answer":"Atomicity means all or nothing.","grader":"counting"}`
	tests := []struct {
		name        string
		contentType string
		body        string
		wantStatus  int
	}{
		{"body too large", "application/json", `{"answer":"` + strings.Repeat("x", 17<<10) + `"}`, 413},
		{"answer too long", "application/json", `{"rubric_id":"db-acid","answer":"` + strings.Repeat("a ", 1001) + `"}`, 422},
		{"blank answer", "application/json", `{"rubric_id":"db-acid","answer":" \n "}`, 422},
		{"malformed JSON", "application/json", `{"rubric_id":"db-acid","answer":"x"`, 400},
		{"trailing value", "application/json", valid + `{}`, 400},
		{"unknown field", "application/json", `{"rubric_id":"db-acid","answer":"x","score":100}`, 400},
		{"wrong media type", "text/plain", valid, 415},
		{"unknown rubric", "application/json", `{"rubric_id":"nope","answer":"Atomicity."}`, 422},
		{"bad samples", "application/json", `{"rubric_id":"db-acid","answer":"Atomicity.","samples":10}`, 422},
		{"no matching rubric", "application/json", `{"question":"What is the best pizza place in Naples?","answer":"Da Michele."}`, 422},
		{"invalid grading", "application/json", `{"rubric_id":"db-acid","answer":"Atomicity.","grader":"broken"}`, 502},
		{"grader down", "application/json", `{"rubric_id":"db-acid","answer":"Atomicity.","grader":"down"}`, 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := countEvaluations(t, store)
			rec := f.do("POST", "/v1/evaluations", tt.contentType, tt.body)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %.300s", rec.Code, tt.wantStatus, rec.Body)
			}
			if after := countEvaluations(t, store); after != before {
				t.Errorf("stored evaluations went from %d to %d", before, after)
			}
			if got := counting.calls.Load(); got != 0 {
				t.Errorf("the counting grader graded %d times", got)
			}
		})
	}
	// Nothing rejected primed the cache: the first valid request grades.
	rec := f.do("POST", "/v1/evaluations", "application/json", valid)
	var e evaluation.Evaluation
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || rec.Code != http.StatusCreated || e.Cached {
		t.Errorf("valid request: status %d, cached %v, err %v; want a fresh 201", rec.Code, e.Cached, err)
	}
}
