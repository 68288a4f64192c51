package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/fault"
)

// base is a creation time with microseconds, the precision the service
// stores.
var base = time.Date(2025, 3, 4, 5, 6, 7, 123456000, time.UTC)

// evalID returns the n-th evaluation id: a UUID whose order as a string is
// the order of n.
func evalID(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012x", n) }

// sampleEvaluation returns an evaluation with every field set.
func sampleEvaluation(n int, at time.Time, rubricID, candidate string) evaluation.Evaluation {
	ev := evaluation.Evidence{Quote: "idempotency keys", Start: 4, End: 20}
	return evaluation.Evaluation{
		ID:           evalID(n),
		Status:       evaluation.StatusCompleted,
		CreatedAt:    at,
		Question:     "How do you retry safely?",
		Answer:       "Use idempotency keys — and «jitter».",
		CandidateRef: candidate,
		Metadata:     map[string]string{"team": "payments", "round": "2"},
		Rubric:       evaluation.RubricRef{ID: rubricID, Version: 3, Title: "Retries", Similarity: 0.8123, MatchedBy: evaluation.MatchedByQuestion},
		Score:        evaluation.Score{Overall: 72.5, Band: evaluation.BandMeets},
		Criteria: []evaluation.CriterionResult{{
			ID: "core", Name: "Core", Weight: 0.6, Level: 3, MaxLevel: 4,
			Evidence:  []evaluation.Evidence{ev},
			KeyPoints: []evaluation.KeyPointResult{{ID: "k1", Point: "keys", Status: evaluation.Covered}},
			Comment:   "Good.",
		}},
		MissingPoints:  []string{"backoff"},
		Misconceptions: []evaluation.MisconceptionFound{{ID: "m1", Claim: "retries are free", Why: "load", Evidence: &ev}},
		Feedback:       "Mention backoff.",
		FollowUps:      []evaluation.FollowUp{{Question: "And jitter?", Criterion: "core", Why: "gap", Depth: 1}},
		Grader: evaluation.GraderInfo{Kind: "llm", Model: "some-model", PromptVersion: "v2", LatencyMS: 1234,
			Tokens: &evaluation.Usage{Prompt: 10, Completion: 5, Total: 15}},
		Flags: []string{evaluation.FlagShortAnswer},
	}
}

func testEvaluations(t *testing.T, newStore func(t *testing.T) evaluation.Store) {
	t.Run("round trip", func(t *testing.T) {
		tests := []struct {
			name string
			e    evaluation.Evaluation
		}{
			{"every field", sampleEvaluation(1, base, "r", "cand")},
			{"few fields", evaluation.Evaluation{ID: evalID(2), Status: evaluation.StatusFailed,
				CreatedAt: base.In(time.FixedZone("X", 3600)), Answer: "a", Rubric: evaluation.RubricRef{ID: "r"}}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				s := newStore(t)
				ok(t, "CreateEvaluation", s.CreateEvaluation(t.Context(), tc.e))
				got, err := s.Evaluation(t.Context(), tc.e.ID)
				ok(t, "Evaluation", err)
				sameJSON(t, "Evaluation", got, tc.e)
				if !got.CreatedAt.Equal(tc.e.CreatedAt) {
					t.Errorf("CreatedAt: got %v, want %v", got.CreatedAt, tc.e.CreatedAt)
				}
			})
		}
	})

	t.Run("the store keeps its own copy", func(t *testing.T) {
		s := newStore(t)
		e := sampleEvaluation(1, base, "r", "")
		want := e.Clone()
		ok(t, "CreateEvaluation", s.CreateEvaluation(t.Context(), e))
		e.Criteria[0].Evidence[0].Quote = "changed by the caller"
		e.Metadata["team"] = "changed"
		got, err := s.Evaluation(t.Context(), e.ID)
		ok(t, "Evaluation", err)
		got.Flags[0] = "changed by the reader"
		again, err := s.Evaluation(t.Context(), e.ID)
		ok(t, "Evaluation", err)
		sameJSON(t, "Evaluation after callers changed their copies", again, want)
	})

	t.Run("missing ids are not found", func(t *testing.T) {
		s := newStore(t)
		ok(t, "CreateEvaluation", s.CreateEvaluation(t.Context(), sampleEvaluation(1, base, "r", "")))
		for _, id := range []string{evalID(2), "not-a-uuid", "", "'; DROP TABLE evaluations; --"} {
			_, err := s.Evaluation(t.Context(), id)
			wantKind(t, fmt.Sprintf("Evaluation(%q)", id), err, fault.NotFound)
		}
	})
}

// listAt is the creation time of the evaluations listed: base plus sec.
func listAt(sec int) time.Time { return base.Add(time.Duration(sec) * time.Second) }

// seedList stores evaluations created out of order, with ties on
// created_at that the id breaks.
func seedList(t *testing.T, newStore func(t *testing.T) evaluation.Store) evaluation.Store {
	s := newStore(t)
	for _, e := range []evaluation.Evaluation{
		sampleEvaluation(3, listAt(1), "r1", "alice"),
		sampleEvaluation(1, listAt(0), "r1", "bob"),
		sampleEvaluation(7, listAt(1), "r2", "alice"),
		sampleEvaluation(2, listAt(2), "r2", ""),
		sampleEvaluation(5, listAt(1), "r1", "bob"),
		sampleEvaluation(4, listAt(3), "r1", "alice"),
		sampleEvaluation(6, listAt(0), "r2", "bob"),
	} {
		ok(t, "CreateEvaluation", s.CreateEvaluation(t.Context(), e))
	}
	return s
}

func testListEvaluations(t *testing.T, newStore func(t *testing.T) evaluation.Store) {
	// Newest first: 4 (t3), 2 (t2), 7, 5, 3 (t1), 6, 1 (t0).
	cursor := func(n int, sec int) *evaluation.Cursor {
		return &evaluation.Cursor{CreatedAt: listAt(sec), ID: evalID(n)}
	}

	tests := []struct {
		name string
		f    evaluation.EvaluationFilter
		want []int
	}{
		{"newest first, ties by id", evaluation.EvaluationFilter{Limit: 100}, []int{4, 2, 7, 5, 3, 6, 1}},
		{"limit", evaluation.EvaluationFilter{Limit: 3}, []int{4, 2, 7}},
		{"zero limit", evaluation.EvaluationFilter{}, nil},
		{"rubric", evaluation.EvaluationFilter{RubricID: "r1", Limit: 100}, []int{4, 5, 3, 1}},
		{"candidate", evaluation.EvaluationFilter{CandidateRef: "bob", Limit: 100}, []int{5, 6, 1}},
		{"rubric and candidate", evaluation.EvaluationFilter{RubricID: "r2", CandidateRef: "alice", Limit: 100}, []int{7}},
		{"no match", evaluation.EvaluationFilter{RubricID: "r3", Limit: 100}, nil},
		{"after, inside a tie", evaluation.EvaluationFilter{After: cursor(7, 1), Limit: 100}, []int{5, 3, 6, 1}},
		{"after the last of a tie", evaluation.EvaluationFilter{After: cursor(3, 1), Limit: 2}, []int{6, 1}},
		{"after a position that is no row", evaluation.EvaluationFilter{After: cursor(6, 1), Limit: 100}, []int{5, 3, 6, 1}},
		{"after with a filter", evaluation.EvaluationFilter{RubricID: "r1", CandidateRef: "bob", After: cursor(5, 1), Limit: 100}, []int{1}},
		{"after the oldest", evaluation.EvaluationFilter{After: cursor(1, 0), Limit: 100}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := seedList(t, newStore).ListEvaluations(t.Context(), tc.f)
			ok(t, "ListEvaluations", err)
			gotIDs := make([]string, len(got))
			for i, e := range got {
				gotIDs[i] = e.ID
			}
			wantIDs := make([]string, len(tc.want))
			for i, n := range tc.want {
				wantIDs[i] = evalID(n)
			}
			if !slices.Equal(gotIDs, wantIDs) {
				t.Errorf("ListEvaluations(%+v):\n got %q\nwant %q", tc.f, gotIDs, wantIDs)
			}
		})
	}

	t.Run("listed evaluations are whole", func(t *testing.T) {
		got, err := seedList(t, newStore).ListEvaluations(t.Context(), evaluation.EvaluationFilter{Limit: 1})
		ok(t, "ListEvaluations", err)
		if len(got) != 1 {
			t.Fatalf("got %d evaluations, want 1", len(got))
		}
		sameJSON(t, "ListEvaluations", got[0], sampleEvaluation(4, listAt(3), "r1", "alice"))
	})

	t.Run("paging with cursors visits each once", func(t *testing.T) {
		s := seedList(t, newStore)
		for _, size := range []int{1, 2, 3, 7, 8} {
			var got []string
			f := evaluation.EvaluationFilter{Limit: size}
			for page := 0; page < 10; page++ {
				es, err := s.ListEvaluations(t.Context(), f)
				ok(t, "ListEvaluations", err)
				for _, e := range es {
					got = append(got, e.ID)
				}
				if len(es) < size {
					break
				}
				last := es[len(es)-1]
				f.After = &evaluation.Cursor{CreatedAt: last.CreatedAt, ID: last.ID}
			}
			want := []string{evalID(4), evalID(2), evalID(7), evalID(5), evalID(3), evalID(6), evalID(1)}
			if !slices.Equal(got, want) {
				t.Errorf("pages of %d:\n got %q\nwant %q", size, got, want)
			}
		}
	})
}
