package evaluation_test

import (
	"context"
	"sync"
	"testing"

	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/memory"
)

// keyRecorder is a store that remembers the cache key each stored
// evaluation was given.
type keyRecorder struct {
	evaluation.Store
	mu   sync.Mutex
	keys map[string]string // evaluation id -> cache key
}

func (s *keyRecorder) CreateEvaluation(ctx context.Context, e evaluation.Evaluation) error {
	s.mu.Lock()
	s.keys[e.ID] = e.CacheKey
	s.mu.Unlock()
	return s.Store.CreateEvaluation(ctx, e)
}

// TestCacheHitCopiesAreNotKeyed: a copy made from a cache hit is stored
// without the cache key, so the grading it copies stays the key's entry;
// a fresh grading (no-cache) becomes the entry and later hits copy it.
func TestCacheHitCopiesAreNotKeyed(t *testing.T) {
	store := &keyRecorder{Store: memory.New(), keys: map[string]string{}}
	svc, _ := newServiceWith(t, store)
	req := evaluation.Request{RubricID: "db-acid", Answer: "Atomicity means all or nothing; durability means a commit survives a crash."}
	steps := []struct {
		name       string
		noCache    bool
		wantCached bool
		wantKeyed  bool
	}{
		{"first grading", false, false, true},
		{"hit", false, true, false},
		{"hit again", false, true, false},
		{"fresh grading", true, false, true},
		{"hit of the fresh one", false, true, false},
	}
	var key string
	for _, st := range steps {
		r := req
		r.NoCache = st.noCache
		e, err := svc.Evaluate(t.Context(), r)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		got := store.keys[e.ID]
		if e.Cached != st.wantCached || (got != "") != st.wantKeyed {
			t.Errorf("%s: cached %v, stored with key %q; want cached %v, keyed %v", st.name, e.Cached, got, st.wantCached, st.wantKeyed)
		}
		if st.wantKeyed {
			if key != "" && got != key {
				t.Errorf("%s: key %q, want the same key %q", st.name, got, key)
			}
			key = got
			hit, err := store.CachedEvaluation(t.Context(), key)
			if err != nil || hit.ID != e.ID {
				t.Errorf("%s: the key's entry is %s (%v), want this grading %s", st.name, hit.ID, err, e.ID)
			}
		}
	}
}
