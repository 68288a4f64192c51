package postgres

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/pgvector/pgvector-go"

	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/rubric"
)

func randomUnit(rng *rand.Rand, dims int) []float32 {
	v := make([]float32, dims)
	var n float64
	for i := range v {
		x := rng.NormFloat64()
		v[i] = float32(x)
		n += x * x
	}
	for i := range v {
		v[i] /= float32(math.Sqrt(n))
	}
	return v
}

func cosine(a, b []float32) float64 {
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	return dot / math.Sqrt(na*nb)
}

// TestSearchUsesHNSWIndex stores 10,000 vectors of dimension 64 and checks
// that the search query is planned as a scan of the model's HNSW index, and
// that the approximate search still finds what an exact one finds.
func TestSearchUsesHNSWIndex(t *testing.T) {
	const (
		rubrics   = 1000
		perRubric = 10
		dims      = 64
		model     = "test-embed"
	)
	s := newStore(t)
	rng := rand.New(rand.NewPCG(1, 2))
	rs := make([]rubric.Rubric, rubrics)
	for i := range rs {
		rs[i] = rubric.Rubric{ID: fmt.Sprintf("r%04d", i), Version: 1, Title: fmt.Sprint("rubric ", i)}
	}
	if _, err := s.SyncRubrics(t.Context(), rs); err != nil {
		t.Fatal(err)
	}
	stored := map[string][][]float32{}
	var batch []evaluation.RubricVector
	for _, r := range rs {
		for range perRubric {
			v := randomUnit(rng, dims)
			stored[r.ID] = append(stored[r.ID], v)
			batch = append(batch, evaluation.RubricVector{RubricID: r.ID, Version: 1, Model: model, Text: "t", Vector: v})
		}
	}
	// One call: the index is then built in bulk, several times faster than
	// growing it insert by insert, which keeps the test quick.
	if err := s.PutVectors(t.Context(), batch); err != nil {
		t.Fatal(err)
	}

	t.Run("plan", func(t *testing.T) {
		tx, err := s.pool.Begin(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(t.Context())
		fetch, ef := searchLimits(5)
		if _, err := tx.Exec(t.Context(), searchSettings, fmt.Sprint(ef)); err != nil {
			t.Fatal(err)
		}
		query := pgvector.NewVector(stored["r0042"][3])
		plan := explain(t, tx, searchQuery(dims), query, model, fetch)
		if want := "Index Scan using " + indexName(model, dims); !strings.Contains(plan, want) {
			t.Errorf("plan does not contain %q:\n%s", want, plan)
		}
	})

	t.Run("finds what an exact search finds", func(t *testing.T) {
		for q := 0; q < 20; q++ {
			id := fmt.Sprintf("r%04d", rng.IntN(rubrics))
			vec := stored[id][rng.IntN(perRubric)]
			got, err := s.SearchRubrics(t.Context(), model, vec, 3)
			if err != nil {
				t.Fatal(err)
			}
			want := exactTopTwo(stored, vec)
			if len(got) != 3 || got[0].Rubric.ID != want.id || math.Abs(got[0].Similarity-want.similarity) > 1e-4 {
				t.Errorf("query %d: got first match %v, want %s %.4f", q, got, want.id, want.similarity)
			}
		}
	})
}

// exactTopTwo scores every rubric by a full scan, as the memory store does,
// and returns the best.
func exactTopTwo(stored map[string][][]float32, q []float32) score {
	var best score
	best.similarity = -2
	for id, vs := range stored {
		var top evaluation.TopTwo
		for _, v := range vs {
			top.Add(cosine(v, q))
		}
		if sim, _ := top.Similarity(); sim > best.similarity {
			best = score{id: id, version: 1, similarity: sim}
		}
	}
	return best
}

// TestPagingWhileInserting pages through 1,000 evaluations, 37 at a time,
// while newer ones keep arriving: every original comes exactly once and in
// order, and the newer ones can only come first.
func TestPagingWhileInserting(t *testing.T) {
	s := newStore(t)
	base := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	originals := make([]evaluation.Evaluation, 1000)
	for i := range originals {
		// Four evaluations per millisecond: random v4 ids break the ties.
		originals[i] = evaluation.Evaluation{ID: uuid.NewString(), Status: evaluation.StatusCompleted,
			CreatedAt: base.Add(time.Duration(i/4) * time.Millisecond), Rubric: evaluation.RubricRef{ID: "r"}}
	}
	var wg sync.WaitGroup
	const writers = 8
	for w := range writers {
		wg.Go(func() {
			for i := w; i < len(originals); i += writers {
				if err := s.CreateEvaluation(t.Context(), originals[i]); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	want := make([]string, len(originals))
	slices.SortFunc(originals, func(a, b evaluation.Evaluation) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	for i, e := range originals {
		want[i] = e.ID
	}

	// The inserter adds newer evaluations until paging is over.
	var inserted atomic.Int64
	started, stop := make(chan struct{}), make(chan struct{})
	wg.Go(func() {
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			e := evaluation.Evaluation{ID: uuid.Must(uuid.NewV7()).String(), Status: evaluation.StatusCompleted,
				CreatedAt: time.Now().UTC().Truncate(time.Microsecond), Rubric: evaluation.RubricRef{ID: "r"}}
			if err := s.CreateEvaluation(t.Context(), e); err != nil {
				t.Error(err)
				return
			}
			if inserted.Add(1) == 10 {
				close(started)
			}
		}
	})
	<-started

	var seen []string
	f := evaluation.EvaluationFilter{Limit: 37}
	for {
		page, err := s.ListEvaluations(t.Context(), f)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page {
			seen = append(seen, e.ID)
		}
		if len(page) < f.Limit {
			break
		}
		last := page[len(page)-1]
		f.After = &evaluation.Cursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}
	before := inserted.Load()
	close(stop)
	wg.Wait()
	t.Logf("%d newer evaluations inserted before paging ended, %d listed", before, len(seen)-len(want))

	if len(seen) < len(want) {
		t.Fatalf("got %d evaluations, want at least %d", len(seen), len(want))
	}
	newer := seen[:len(seen)-len(want)]
	if got := seen[len(newer):]; !slices.Equal(got, want) {
		t.Errorf("the originals, after %d newer ones, are not each listed once in order", len(newer))
	}
	for _, id := range newer {
		if slices.Contains(want, id) {
			t.Errorf("original %s listed among the newer ones", id)
		}
	}
}

// TestCacheLookupUsesIndex: a cache key that many hits have stored copies
// under is still one index entry away (migration 0004), not a scan and a
// sort of every copy.
func TestCacheLookupUsesIndex(t *testing.T) {
	s := newStore(t)
	start := time.Now().Add(-time.Hour)
	const rows, hot = 5000, 50
	for i := range rows {
		key := "hot"
		if i%(rows/hot) != 0 {
			key = fmt.Sprint("cold-", i)
		}
		e := evaluation.Evaluation{ID: uuid.NewString(), Status: evaluation.StatusCompleted,
			CreatedAt: start.Add(time.Duration(i) * time.Second), CacheKey: key,
			Rubric: evaluation.RubricRef{ID: "r", Version: 1}}
		if err := s.CreateEvaluation(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.pool.Exec(t.Context(), "ANALYZE evaluations"); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"force_generic_plan", "force_custom_plan"} {
		t.Run(mode, func(t *testing.T) {
			tx, err := s.pool.Begin(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(t.Context())
			if _, err := tx.Exec(t.Context(), "SET LOCAL plan_cache_mode = "+mode); err != nil {
				t.Fatal(err)
			}
			plan := explain(t, tx, selectCached, []string{"hot", "other"})
			if !strings.Contains(plan, "Index Scan using evaluations_cache_idx") || strings.Contains(plan, "Sort") || strings.Contains(plan, "Filter") {
				t.Errorf("want an index scan of evaluations_cache_idx, no sort and no filter; plan:\n%s", plan)
			}
		})
	}
	got, err := s.CachedEvaluation(t.Context(), "hot")
	if err != nil {
		t.Fatal(err)
	}
	if want := start.Add((rows - rows/hot) * time.Second).Truncate(time.Microsecond); !got.CreatedAt.Equal(want) {
		t.Errorf("cached evaluation created %v, want the newest, %v", got.CreatedAt, want)
	}
}

// explain returns the plan of query with args, one line per plan line.
func explain(t *testing.T, tx pgx.Tx, query string, args ...any) string {
	t.Helper()
	rows, err := tx.Query(t.Context(), "EXPLAIN "+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}
