// Package memory is the in-memory Store: the default when no database is
// configured. It behaves like the PostgreSQL store (the same contract tests
// run against both) but keeps nothing across restarts.
package memory

import (
	"context"
	"slices"
	"sort"
	"sync"

	"github.com/assay-dev/assay/internal/embed"
	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/fault"
	"github.com/assay-dev/assay/internal/rubric"
)

type version struct {
	rubric rubric.Rubric
	hash   string
}

type entry struct {
	versions []version // ascending
	archived bool
}

func (e *entry) latest() version { return e.versions[len(e.versions)-1] }

type vectorKey struct {
	model, id string
	version   int
}

// Store is safe for concurrent use.
type Store struct {
	mu          sync.RWMutex
	rubrics     map[string]*entry
	vectors     map[vectorKey][][]float32
	evaluations map[string]evaluation.Evaluation
	// cached maps a cache key to the newest evaluation id with it.
	cached map[string]string
	// order holds evaluation ids newest first, for keyset listing.
	order []evaluation.Cursor
	// batches and their evaluation ids (async.go).
	batches map[string]evaluation.Batch
	members map[string][]string
}

// New returns an empty store.
func New() *Store {
	return &Store{
		rubrics:     map[string]*entry{},
		vectors:     map[vectorKey][][]float32{},
		evaluations: map[string]evaluation.Evaluation{},
		cached:      map[string]string{},
		batches:     map[string]evaluation.Batch{},
		members:     map[string][]string{},
	}
}

var _ evaluation.Store = (*Store)(nil)

// SyncRubrics implements evaluation.Store.
func (s *Store) SyncRubrics(_ context.Context, rs []rubric.Rubric) (evaluation.SyncResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var res evaluation.SyncResult
	for _, r := range rs {
		hash := r.ContentHash()
		e, ok := s.rubrics[r.ID]
		switch {
		case !ok:
			s.rubrics[r.ID] = &entry{versions: []version{{rubric: r, hash: hash}}}
			res.Added = append(res.Added, r.ID)
		case e.latest().hash == hash && !e.archived:
			res.Unchanged++
		default:
			r.Version = max(r.Version, e.latest().rubric.Version+1)
			e.versions = append(e.versions, version{rubric: r, hash: hash})
			e.archived = false
			res.Updated = append(res.Updated, r.ID)
		}
	}
	return res, nil
}

// CreateRubric implements evaluation.Store.
func (s *Store) CreateRubric(_ context.Context, r rubric.Rubric) (rubric.Rubric, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.rubrics[r.ID]
	switch {
	case !ok:
		r.Version = max(r.Version, 1)
		s.rubrics[r.ID] = &entry{versions: []version{{rubric: r, hash: r.ContentHash()}}}
	case !e.archived:
		return rubric.Rubric{}, fault.New(fault.Conflict, "rubric %q already exists; PUT it to make a new version", r.ID)
	default:
		r.Version = max(r.Version, e.latest().rubric.Version+1)
		e.versions = append(e.versions, version{rubric: r, hash: r.ContentHash()})
		e.archived = false
	}
	return r, nil
}

// UpdateRubric implements evaluation.Store.
func (s *Store) UpdateRubric(_ context.Context, r rubric.Rubric) (rubric.Rubric, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.rubrics[r.ID]
	if !ok || e.archived {
		return rubric.Rubric{}, evaluation.NotFound("rubric", r.ID)
	}
	hash := r.ContentHash()
	if e.latest().hash == hash {
		return e.latest().rubric, nil
	}
	r.Version = max(r.Version, e.latest().rubric.Version+1)
	e.versions = append(e.versions, version{rubric: r, hash: hash})
	return r, nil
}

// ArchiveRubric implements evaluation.Store.
func (s *Store) ArchiveRubric(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.rubrics[id]
	if !ok || e.archived {
		return evaluation.NotFound("rubric", id)
	}
	e.archived = true
	return nil
}

// Rubric implements evaluation.Store.
func (s *Store) Rubric(_ context.Context, id string) (rubric.Rubric, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.rubrics[id]
	if !ok || e.archived {
		return rubric.Rubric{}, evaluation.NotFound("rubric", id)
	}
	return e.latest().rubric, nil
}

// RubricVersion implements evaluation.Store.
func (s *Store) RubricVersion(_ context.Context, id string, v int) (rubric.Rubric, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if e, ok := s.rubrics[id]; ok {
		for _, ver := range e.versions {
			if ver.rubric.Version == v {
				return ver.rubric, nil
			}
		}
	}
	return rubric.Rubric{}, evaluation.NotFound("rubric version", id)
}

// ListRubrics implements evaluation.Store.
func (s *Store) ListRubrics(_ context.Context, f evaluation.RubricFilter) ([]rubric.Rubric, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []rubric.Rubric{}
	for id, e := range s.rubrics {
		r := e.latest().rubric
		if e.archived || id <= f.After || (f.Tag != "" && !slices.Contains(r.Tags, f.Tag)) {
			continue
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	if len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

// RubricsToEmbed implements evaluation.Store.
func (s *Store) RubricsToEmbed(_ context.Context, model string) ([]rubric.Rubric, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []rubric.Rubric
	for id, e := range s.rubrics {
		r := e.latest().rubric
		if _, ok := s.vectors[vectorKey{model, id, r.Version}]; !ok && !e.archived {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// PutVectors implements evaluation.Store.
func (s *Store) PutVectors(_ context.Context, vs []evaluation.RubricVector) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	fresh := map[vectorKey]bool{}
	for _, v := range vs {
		k := vectorKey{v.Model, v.RubricID, v.Version}
		if !fresh[k] {
			// Replacing, not appending, keeps PutVectors idempotent.
			s.vectors[k] = nil
			fresh[k] = true
		}
		s.vectors[k] = append(s.vectors[k], slices.Clone(v.Vector))
	}
	return nil
}

// SearchRubrics implements evaluation.Store with an exact scan, which is
// fast enough for a question bank of thousands of rubrics.
func (s *Store) SearchRubrics(_ context.Context, model string, vec []float32, k int) ([]evaluation.Match, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []evaluation.Match
	for id, e := range s.rubrics {
		r := e.latest().rubric
		vecs := s.vectors[vectorKey{model, id, r.Version}]
		if e.archived || len(vecs) == 0 {
			continue
		}
		var top evaluation.TopTwo
		for _, v := range vecs {
			if len(v) == len(vec) {
				top.Add(embed.Cosine(v, vec))
			}
		}
		if sim, ok := top.Similarity(); ok {
			out = append(out, evaluation.Match{Rubric: r, Similarity: sim})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Similarity != out[j].Similarity {
			return out[i].Similarity > out[j].Similarity
		}
		return out[i].Rubric.ID < out[j].Rubric.ID
	})
	if len(out) > k {
		out = out[:k]
	}
	return out, nil
}

// CreateEvaluation implements evaluation.Store.
func (s *Store) CreateEvaluation(_ context.Context, e evaluation.Evaluation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.evaluations[e.ID]; dup {
		return fault.New(fault.Conflict, "evaluation %q already exists", e.ID)
	}
	s.evaluations[e.ID] = e.Clone()
	s.cacheLocked(e)
	c := evaluation.Cursor{CreatedAt: e.CreatedAt, ID: e.ID}
	i := sort.Search(len(s.order), func(i int) bool { return newer(c, s.order[i]) })
	s.order = slices.Insert(s.order, i, c)
	return nil
}

// newer reports whether a sorts before b in newest-first order.
func newer(a, b evaluation.Cursor) bool {
	if !a.CreatedAt.Equal(b.CreatedAt) {
		return a.CreatedAt.After(b.CreatedAt)
	}
	return a.ID > b.ID
}

// Evaluation implements evaluation.Store.
func (s *Store) Evaluation(_ context.Context, id string) (evaluation.Evaluation, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.evaluations[id]
	if !ok {
		return evaluation.Evaluation{}, evaluation.NotFound("evaluation", id)
	}
	return e.Clone(), nil
}

// CachedEvaluation implements evaluation.Store.
func (s *Store) CachedEvaluation(_ context.Context, key string) (evaluation.Evaluation, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	id, ok := s.cached[key]
	if !ok {
		return evaluation.Evaluation{}, evaluation.NotFound("cached evaluation", key)
	}
	return s.evaluations[id].Clone(), nil
}

// ListEvaluations implements evaluation.Store.
func (s *Store) ListEvaluations(_ context.Context, f evaluation.EvaluationFilter) ([]evaluation.Evaluation, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	i := 0
	if f.After != nil {
		i = sort.Search(len(s.order), func(i int) bool { return newer(*f.After, s.order[i]) })
	}
	out := []evaluation.Evaluation{}
	for ; i < len(s.order) && len(out) < f.Limit; i++ {
		e := s.evaluations[s.order[i].ID]
		if (f.RubricID != "" && e.Rubric.ID != f.RubricID) || (f.CandidateRef != "" && e.CandidateRef != f.CandidateRef) ||
			(f.APIKeyID != "" && e.APIKeyID != f.APIKeyID) {
			continue
		}
		out = append(out, e.Clone())
	}
	return out, nil
}

// Ping implements evaluation.Store; memory is always ready.
func (s *Store) Ping(context.Context) error { return nil }
