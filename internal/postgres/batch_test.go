package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/fault"
)

func batchEvaluation(n int, key string) evaluation.Evaluation {
	return evaluation.Evaluation{
		ID:        uuid.NewSHA1(uuid.NameSpaceOID, fmt.Append(nil, n)).String(),
		Status:    evaluation.StatusCompleted,
		CreatedAt: time.Date(2026, 1, 1, 0, 0, n, 0, time.UTC),
		Answer:    fmt.Sprint("answer ", n),
		Rubric:    evaluation.RubricRef{ID: "r", Version: 1},
		CacheKey:  key,
	}
}

// TestInsertBatch runs the coalesced insert with batches as the batcher
// builds them under load: one statement for all, and when one evaluation
// is at fault, only that one fails.
func TestInsertBatch(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	stored := batchEvaluation(1, "k")
	if err := s.CreateEvaluation(ctx, stored); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		batch   []evaluation.Evaluation
		wantErr []fault.Kind // -1: no error
	}{
		{"all new", []evaluation.Evaluation{batchEvaluation(2, "k"), batchEvaluation(3, ""), batchEvaluation(4, "k")}, []fault.Kind{-1, -1, -1}},
		{"one duplicate", []evaluation.Evaluation{batchEvaluation(5, "k"), stored, batchEvaluation(6, "")}, []fault.Kind{-1, fault.Conflict, -1}},
		{"a bad id", []evaluation.Evaluation{{ID: "not-a-uuid"}, batchEvaluation(7, "")}, []fault.Kind{fault.Internal, -1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			errs, err := s.insertEvaluations(ctx, tc.batch)
			if err != nil {
				t.Fatal(err)
			}
			for i, want := range tc.wantErr {
				got := errs[i]
				switch {
				case want == -1 && got != nil:
					t.Errorf("evaluation %d: err = %v, want nil", i, got)
				case want != -1 && (got == nil || fault.KindOf(got) != want):
					t.Errorf("evaluation %d: err = %v, want kind %v", i, got, want)
				case want == -1:
					if _, err := s.Evaluation(ctx, tc.batch[i].ID); err != nil {
						t.Errorf("evaluation %d not stored: %v", i, err)
					}
				}
			}
		})
	}
}

// TestInsertBatchNotRetriedAfterOtherErrors: only a batch the server
// refused is retried row by row; after any other error (here a context
// ended before the COPY) the rows may or may not be stored, and every
// caller gets the error rather than a retry that would store them anyway.
func TestInsertBatchNotRetriedAfterOtherErrors(t *testing.T) {
	s := newStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	batch := []evaluation.Evaluation{batchEvaluation(1, ""), batchEvaluation(2, "")}
	errs, err := s.insertEvaluations(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range batch {
		if errs[i] == nil || fault.KindOf(errs[i]) == fault.Conflict {
			t.Errorf("evaluation %d: err = %v, want the COPY's error", i, errs[i])
		}
		if _, err := s.Evaluation(t.Context(), e.ID); fault.KindOf(err) != fault.NotFound {
			t.Errorf("evaluation %d stored after a failed batch (retried?): %v", i, err)
		}
	}
}

// TestLookupBatch reads several cache keys in one statement, repeated and
// missing ones included.
func TestLookupBatch(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	for _, e := range []evaluation.Evaluation{batchEvaluation(1, "a"), batchEvaluation(2, "a"), batchEvaluation(3, "b")} {
		if err := s.CreateEvaluation(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	keys := []string{"b", "missing", "a", "b", "a"}
	rows, err := s.lookupCached(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	want := []int{3, 0, 2, 3, 2} // evaluation n, 0 for none
	for i, row := range rows {
		got := ""
		if row.body != nil {
			var e evaluation.Evaluation
			if err := json.Unmarshal(row.body, &e); err != nil {
				t.Fatalf("key %s: %v", keys[i], err)
			}
			got = e.Answer
			if e.ID != row.id {
				t.Errorf("key %s: row id %s, body of %s", keys[i], row.id, e.ID)
			}
		}
		wantAnswer := ""
		if want[i] > 0 {
			wantAnswer = fmt.Sprint("answer ", want[i])
		}
		if got != wantAnswer {
			t.Errorf("key %s: got %q, want %q", keys[i], got, wantAnswer)
		}
	}
}

// TestCachedEvaluationReusesDecoded: a hit decoded once is served by id
// afterwards; a newer completed evaluation under the key is served as
// soon as it is stored, whichever replica stored it.
func TestCachedEvaluationReusesDecoded(t *testing.T) {
	url := newSchema(t)
	a := open(t, url)
	if err := a.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	b := open(t, url) // another replica
	ctx := t.Context()
	if err := a.CreateEvaluation(ctx, batchEvaluation(1, "k")); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		got, err := a.CachedEvaluation(ctx, "k")
		if err != nil || got.Answer != "answer 1" {
			t.Fatalf("CachedEvaluation = %q, %v; want answer 1", got.Answer, err)
		}
	}
	if _, ok := a.cache.hits.get(batchEvaluation(1, "k").ID); !ok {
		t.Error("the decoded hit was not kept")
	}
	if err := b.CreateEvaluation(ctx, batchEvaluation(2, "k")); err != nil {
		t.Fatal(err)
	}
	if got, err := a.CachedEvaluation(ctx, "k"); err != nil || got.Answer != "answer 2" {
		t.Errorf("after another replica stored a newer one: %q, %v; want answer 2", got.Answer, err)
	}
}

// TestSearchErrorLeavesPoolUsable makes the pipelined search fail midway
// (pgvector refuses a NaN) on a pool of one connection: the transaction
// must be ended and the connection reused, so the next search works.
func TestSearchErrorLeavesPoolUsable(t *testing.T) {
	url := newSchema(t)
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	if err := open(t, url).Migrate(t.Context()); err != nil { // River's migration takes two connections
		t.Fatal(err)
	}
	s := open(t, url+sep+"pool_max_conns=1")
	ctx := t.Context()
	bad := []float32{1, float32(math.NaN()), 0}
	if _, err := s.SearchRubrics(ctx, "m", bad, 3); err == nil {
		t.Fatal("search with a NaN: no error")
	}
	if _, err := s.SearchRubrics(ctx, "m", []float32{1, 0, 0}, 3); err != nil {
		t.Fatalf("search after a failed one: %v", err)
	}
	if got := s.pool.Stat().TotalConns(); got != 1 {
		t.Errorf("pool has %d connections, want the one it had", got)
	}
}
