package memory

import (
	"context"
	"slices"
	"sort"

	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/fault"
)

// The parts of evaluation.Store that asynchronous grading needs: status
// transitions and batches.

// UpdateEvaluation implements evaluation.Store. The creation time stays as
// stored: it places the evaluation in listings.
func (s *Store) UpdateEvaluation(_ context.Context, e evaluation.Evaluation, from ...string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.evaluations[e.ID]
	if !ok {
		return false, evaluation.NotFound("evaluation", e.ID)
	}
	if !slices.Contains(from, old.Status) {
		return false, nil
	}
	e.CreatedAt = old.CreatedAt
	s.evaluations[e.ID] = e.Clone()
	s.cacheLocked(e)
	return true, nil
}

func cursorOf(e evaluation.Evaluation) evaluation.Cursor {
	return evaluation.Cursor{CreatedAt: e.CreatedAt, ID: e.ID}
}

// CreateQueued implements evaluation.Store: it checks every id first, so
// that it stores all or nothing.
func (s *Store) CreateQueued(_ context.Context, b *evaluation.Batch, es []evaluation.Evaluation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b != nil {
		if _, dup := s.batches[b.ID]; dup {
			return fault.New(fault.Conflict, "batch %q already exists", b.ID)
		}
	}
	seen := map[string]bool{}
	for _, e := range es {
		if _, dup := s.evaluations[e.ID]; dup || seen[e.ID] {
			return fault.New(fault.Conflict, "evaluation %q already exists", e.ID)
		}
		if _, ok := s.batches[e.BatchID]; e.BatchID != "" && !ok && (b == nil || b.ID != e.BatchID) {
			return fault.New(fault.NotFound, "batch %q not found", e.BatchID)
		}
		seen[e.ID] = true
	}
	if b != nil {
		stored := *b
		stored.Counts = nil
		s.batches[b.ID] = stored
	}
	for _, e := range es {
		s.evaluations[e.ID] = e.Clone()
		s.cacheLocked(e)
		c := cursorOf(e)
		i := sort.Search(len(s.order), func(i int) bool { return newer(c, s.order[i]) })
		s.order = slices.Insert(s.order, i, c)
		if e.BatchID != "" {
			s.members[e.BatchID] = append(s.members[e.BatchID], e.ID)
		}
	}
	return nil
}

// Batch implements evaluation.Store.
func (s *Store) Batch(_ context.Context, id string) (evaluation.Batch, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	b, ok := s.batches[id]
	if !ok {
		return evaluation.Batch{}, evaluation.NotFound("batch", id)
	}
	b.Counts = map[string]int{}
	for _, eid := range s.members[id] {
		b.Counts[s.evaluations[eid].Status]++
	}
	return b, nil
}

// BatchEvaluations implements evaluation.Store.
func (s *Store) BatchEvaluations(_ context.Context, id string) ([]evaluation.Evaluation, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if _, ok := s.batches[id]; !ok {
		return nil, evaluation.NotFound("batch", id)
	}
	ids := slices.Clone(s.members[id])
	slices.Sort(ids)
	out := make([]evaluation.Evaluation, len(ids))
	for i, eid := range ids {
		out[i] = s.evaluations[eid].Clone()
	}
	return out, nil
}

// FillBatch implements evaluation.Store.
func (s *Store) FillBatch(_ context.Context, id string, total int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.batches[id]
	if !ok {
		return evaluation.NotFound("batch", id)
	}
	b.Total, b.Filled = total, true
	s.batches[id] = b
	return nil
}

// cacheLocked makes e its cache key's entry if it is the newest completed
// evaluation of the key: by creation time, like the PostgreSQL store, not
// by the order the writes arrived in.
func (s *Store) cacheLocked(e evaluation.Evaluation) {
	if e.CacheKey == "" || e.Status != evaluation.StatusCompleted {
		return
	}
	if cur, ok := s.evaluations[s.cached[e.CacheKey]]; !ok || cur.ID == e.ID || !newer(cursorOf(cur), cursorOf(e)) {
		s.cached[e.CacheKey] = e.ID
	}
}
