package storetest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/fault"
)

// batchID returns the n-th batch id.
func batchID(n int) string { return fmt.Sprintf("00000000-0000-4000-9000-%012x", n) }

// queued returns evaluation n as a queued one, in batch b (if set).
func queued(n int, b string) evaluation.Evaluation {
	e := sampleEvaluation(n, listAt(n), "r", "")
	e.Status, e.BatchID, e.CacheKey = evaluation.StatusQueued, b, ""
	return e
}

func testAsync(t *testing.T, newStore func(t *testing.T) evaluation.Store) {
	t.Run("UpdateEvaluation", func(t *testing.T) { testUpdate(t, newStore) })
	t.Run("CreateQueued", func(t *testing.T) { testCreateQueued(t, newStore) })
	t.Run("batch errors", func(t *testing.T) {
		s := newStore(t)
		_, err := s.Batch(t.Context(), batchID(1))
		wantKind(t, "Batch(missing)", err, fault.NotFound)
		_, err = s.Batch(t.Context(), "not-a-uuid")
		wantKind(t, "Batch(not a uuid)", err, fault.NotFound)
		_, err = s.BatchEvaluations(t.Context(), batchID(1))
		wantKind(t, "BatchEvaluations(missing)", err, fault.NotFound)
		wantKind(t, "FillBatch(missing)", s.FillBatch(t.Context(), batchID(1), 3), fault.NotFound)
	})
}

func testUpdate(t *testing.T, newStore func(t *testing.T) evaluation.Store) {
	tests := []struct {
		name   string
		stored string
		from   []string
		want   bool
	}{
		{"from the stored status", evaluation.StatusQueued, []string{evaluation.StatusQueued}, true},
		{"from one of several", evaluation.StatusRunning, []string{evaluation.StatusQueued, evaluation.StatusRunning}, true},
		{"not from another status", evaluation.StatusCompleted, []string{evaluation.StatusRunning}, false},
		{"not from nothing", evaluation.StatusQueued, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			e := queued(1, "")
			e.Status = tc.stored
			ok(t, "CreateEvaluation", s.CreateEvaluation(t.Context(), e))
			next := sampleEvaluation(1, listAt(1), "r2", "")
			next.CreatedAt = listAt(50) // ignored: the creation time stays
			got, err := s.UpdateEvaluation(t.Context(), next, tc.from...)
			ok(t, "UpdateEvaluation", err)
			if got != tc.want {
				t.Errorf("UpdateEvaluation from %q with stored %q = %v, want %v", tc.from, tc.stored, got, tc.want)
			}
			back, err := s.Evaluation(t.Context(), e.ID)
			ok(t, "Evaluation", err)
			want := e
			if tc.want {
				want = next
				want.CreatedAt = e.CreatedAt
			}
			sameJSON(t, "stored evaluation", back, want)
		})
	}

	t.Run("missing is not found", func(t *testing.T) {
		for _, id := range []string{evalID(9), "not-a-uuid"} {
			e := queued(9, "")
			e.ID = id
			_, err := newStore(t).UpdateEvaluation(t.Context(), e, evaluation.StatusQueued)
			wantKind(t, fmt.Sprintf("UpdateEvaluation(%q)", id), err, fault.NotFound)
		}
	})

	t.Run("one of many concurrent completions wins", func(t *testing.T) {
		s := newStore(t)
		ok(t, "CreateEvaluation", s.CreateEvaluation(t.Context(), queued(1, "")))
		var wg sync.WaitGroup
		wins := make(chan int, 8)
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				e := sampleEvaluation(1, listAt(1), "r", "")
				e.Feedback = fmt.Sprint("worker ", i)
				if won, err := s.UpdateEvaluation(t.Context(), e, evaluation.StatusQueued); err == nil && won {
					wins <- i
				} else if err != nil {
					t.Errorf("UpdateEvaluation: %v", err)
				}
			}()
		}
		wg.Wait()
		close(wins)
		var winners []int
		for w := range wins {
			winners = append(winners, w)
		}
		if len(winners) != 1 {
			t.Fatalf("%d updates won, want exactly 1", len(winners))
		}
		back, err := s.Evaluation(t.Context(), evalID(1))
		ok(t, "Evaluation", err)
		if want := fmt.Sprint("worker ", winners[0]); back.Feedback != want {
			t.Errorf("stored feedback %q, want the winner's %q", back.Feedback, want)
		}
	})

	t.Run("a completed update feeds the cache", func(t *testing.T) {
		s := newStore(t)
		ok(t, "CreateEvaluation", s.CreateEvaluation(t.Context(), queued(1, "")))
		done := sampleEvaluation(1, listAt(1), "r", "")
		done.CacheKey = "key-1"
		_, err := s.UpdateEvaluation(t.Context(), done, evaluation.StatusQueued)
		ok(t, "UpdateEvaluation", err)
		hit, err := s.CachedEvaluation(t.Context(), "key-1")
		ok(t, "CachedEvaluation", err)
		if hit.ID != done.ID {
			t.Errorf("CachedEvaluation = %s, want %s", hit.ID, done.ID)
		}
	})
}

func testCreateQueued(t *testing.T, newStore func(t *testing.T) evaluation.Store) {
	t.Run("a batch and its evaluations", func(t *testing.T) {
		s := newStore(t)
		b := evaluation.Batch{ID: batchID(1), Kind: evaluation.KindRegrade, CreatedAt: base, APIKeyID: "k1",
			RubricID: "r", RubricVersion: 2, Total: 3, Filled: false}
		es := []evaluation.Evaluation{queued(3, b.ID), queued(1, b.ID), queued(2, b.ID)}
		ok(t, "CreateQueued", s.CreateQueued(t.Context(), &b, es))
		ok(t, "CreateQueued without a batch", s.CreateQueued(t.Context(), nil, []evaluation.Evaluation{queued(4, b.ID), queued(5, "")}))
		done := es[0]
		done.Status = evaluation.StatusCompleted
		_, err := s.UpdateEvaluation(t.Context(), done, evaluation.StatusQueued)
		ok(t, "UpdateEvaluation", err)

		got, err := s.Batch(t.Context(), b.ID)
		ok(t, "Batch", err)
		want := b
		want.Counts = map[string]int{evaluation.StatusQueued: 3, evaluation.StatusCompleted: 1}
		sameJSON(t, "Batch", got, want)
		if !got.CreatedAt.Equal(b.CreatedAt) {
			t.Errorf("CreatedAt = %v, want %v", got.CreatedAt, b.CreatedAt)
		}

		members, err := s.BatchEvaluations(t.Context(), b.ID)
		ok(t, "BatchEvaluations", err)
		var ids []string
		for _, e := range members {
			ids = append(ids, e.ID)
		}
		sameStrings(t, "BatchEvaluations ids", ids, []string{evalID(1), evalID(2), evalID(3), evalID(4)})
		sameJSON(t, "a batch member", members[1], queued(2, b.ID))

		ok(t, "FillBatch", s.FillBatch(t.Context(), b.ID, 4))
		got, err = s.Batch(t.Context(), b.ID)
		ok(t, "Batch", err)
		if got.Total != 4 || !got.Filled {
			t.Errorf("after FillBatch: total %d, filled %v; want 4, true", got.Total, got.Filled)
		}
	})

	t.Run("all or none", func(t *testing.T) {
		tests := []struct {
			name  string
			batch *evaluation.Batch
			es    []evaluation.Evaluation
			kind  fault.Kind
		}{
			{"an id taken", &evaluation.Batch{ID: batchID(2), Kind: evaluation.KindBatch, CreatedAt: base, Total: 2, Filled: true},
				[]evaluation.Evaluation{queued(2, batchID(2)), queued(1, batchID(2))}, fault.Conflict},
			{"an id twice", nil, []evaluation.Evaluation{queued(2, ""), queued(2, "")}, fault.Conflict},
			{"a batch taken", &evaluation.Batch{ID: batchID(1), Kind: evaluation.KindBatch, CreatedAt: base, Filled: true},
				[]evaluation.Evaluation{queued(2, "")}, fault.Conflict},
			{"an unknown batch", nil, []evaluation.Evaluation{queued(2, ""), queued(3, batchID(7))}, fault.NotFound},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				s := newStore(t)
				ok(t, "CreateQueued", s.CreateQueued(t.Context(), &evaluation.Batch{ID: batchID(1), Kind: evaluation.KindBatch,
					CreatedAt: base, Total: 1, Filled: true}, []evaluation.Evaluation{queued(1, batchID(1))}))
				wantKind(t, "CreateQueued", s.CreateQueued(t.Context(), tc.batch, tc.es), tc.kind)
				_, err := s.Evaluation(t.Context(), evalID(2))
				wantKind(t, "an evaluation of the refused call", err, fault.NotFound)
				if tc.batch != nil && tc.batch.ID != batchID(1) {
					_, err := s.Batch(t.Context(), tc.batch.ID)
					wantKind(t, "the batch of the refused call", err, fault.NotFound)
				}
			})
		}
	})
}
