package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/fault"
)

// testCacheAndOwners checks the evaluation cache lookup and the per-key
// filter that API keys rely on.
func testCacheAndOwners(t *testing.T, newStore func(t *testing.T) evaluation.Store) {
	t.Run("cached evaluation is the newest completed one with the key", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		if _, err := s.CachedEvaluation(ctx, "k1"); fault.KindOf(err) != fault.NotFound {
			t.Fatalf("empty store: err = %v, want not found", err)
		}
		older := sampleEvaluation(1, base, "r", "")
		older.CacheKey = "k1"
		newer := sampleEvaluation(2, base.Add(time.Second), "r", "")
		newer.CacheKey = "k1"
		other := sampleEvaluation(3, base.Add(2*time.Second), "r", "")
		other.CacheKey = "k2"
		failed := sampleEvaluation(4, base.Add(3*time.Second), "r", "")
		failed.CacheKey, failed.Status = "k1", evaluation.StatusFailed
		for _, e := range []evaluation.Evaluation{older, newer, other, failed} {
			if err := s.CreateEvaluation(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.CachedEvaluation(ctx, "k1")
		if err != nil || got.ID != newer.ID {
			t.Errorf("CachedEvaluation(k1) = %s, %v; want %s", got.ID, err, newer.ID)
		}
	})
	t.Run("list by API key", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		for i, key := range []string{"a", "b", "a", ""} {
			e := sampleEvaluation(i+1, base.Add(time.Duration(i)*time.Second), "r", "")
			e.APIKeyID = key
			if err := s.CreateEvaluation(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.ListEvaluations(ctx, evaluation.EvaluationFilter{APIKeyID: "a", Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].ID != evalID(3) || got[1].ID != evalID(1) || got[0].APIKeyID != "a" {
			t.Errorf("key a lists %d evaluations, want evaluations 3 and 1 with their key", len(got))
		}
	})
	t.Run("an id is stored once", func(t *testing.T) {
		s := newStore(t)
		e := sampleEvaluation(1, base, "r", "")
		if err := s.CreateEvaluation(t.Context(), e); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateEvaluation(t.Context(), e); fault.KindOf(err) != fault.Conflict {
			t.Errorf("second create: err = %v, want conflict", err)
		}
		got, _ := s.ListEvaluations(t.Context(), evaluation.EvaluationFilter{Limit: 10})
		if len(got) != 1 {
			t.Errorf("listed %d evaluations, want 1", len(got))
		}
	})
	t.Run("concurrent creates and cache reads", func(t *testing.T) {
		// A store may serve concurrent calls together (the PostgreSQL
		// store coalesces them into one statement); each caller must still
		// get its own result, and one caller's duplicate must not fail the
		// others' writes.
		s := newStore(t)
		ctx := t.Context()
		dup := sampleEvaluation(1, base, "r", "")
		dup.CacheKey = "k0"
		if err := s.CreateEvaluation(ctx, dup); err != nil {
			t.Fatal(err)
		}
		const writers, keys = 48, 6
		keyOf := map[string]string{dup.ID: "k0"} // the body does not hold the cache key
		for i := range writers {
			keyOf[evalID(i+2)] = fmt.Sprintf("k%d", i%keys)
		}
		var wg sync.WaitGroup
		errs := make([]error, writers)
		for i := range writers {
			wg.Go(func() {
				e := sampleEvaluation(i+2, base.Add(time.Duration(i+1)*time.Second), "r", "")
				e.CacheKey = fmt.Sprintf("k%d", i%keys)
				if i == writers/2 {
					e = dup
				}
				errs[i] = s.CreateEvaluation(ctx, e)
			})
			wg.Go(func() {
				key := fmt.Sprintf("k%d", i%keys)
				got, err := s.CachedEvaluation(ctx, key)
				switch {
				case fault.KindOf(err) == fault.NotFound:
				case err != nil:
					t.Errorf("CachedEvaluation(%s): %v", key, err)
				case keyOf[got.ID] != key || got.Answer != dup.Answer:
					t.Errorf("CachedEvaluation(%s) = evaluation %s, stored under %q", key, got.ID, keyOf[got.ID])
				}
			})
		}
		wg.Wait()
		for i, err := range errs {
			switch {
			case i == writers/2 && fault.KindOf(err) != fault.Conflict:
				t.Errorf("writer %d (duplicate id): err = %v, want a conflict", i, err)
			case i != writers/2 && err != nil:
				t.Errorf("writer %d: err = %v, want nil", i, err)
			}
		}
		// Each key's newest is the last writer of that key.
		for k := range keys {
			last := writers - keys + k
			if last == writers/2 {
				last -= keys
			}
			got, err := s.CachedEvaluation(ctx, fmt.Sprintf("k%d", k))
			if err != nil || got.ID != evalID(last+2) {
				t.Errorf("CachedEvaluation(k%d) = %s, %v; want %s", k, got.ID, err, evalID(last+2))
			}
		}
		all, err := s.ListEvaluations(ctx, evaluation.EvaluationFilter{Limit: 100})
		if err != nil || len(all) != writers {
			t.Errorf("listed %d evaluations (%v), want %d", len(all), err, writers)
		}
	})
}
