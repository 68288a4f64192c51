package postgres

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgvector/pgvector-go"

	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/postgres/pgtest"
	"github.com/assay-dev/assay/internal/rubric"
)

// The search benchmark's bank: rubrics of benchPerRubric vectors each, of
// the local embedder's dimension, with the structure of a real bank:
// rubrics come in areas of benchAreaSize (caching, databases, ...), each
// rubric's topic lies near its area's (cosine about 0.8), and its vectors
// near its topic (about 0.8), as the texts of one rubric do. Queries are
// drawn around a random rubric's topic, so their exact top 5 is their
// rubric and its closest neighbours in the area.
const (
	benchDims      = 1024
	benchPerRubric = 10
	benchAreaSize  = 50
	benchModel     = "bench-embed"
	topicNoise     = 0.75 // a rubric topic's distance from its area
	vectorNoise    = 0.75 // a vector's distance from its topic
	queryNoise     = 1.0  // a query's distance from its topic
	recallQueries  = 100  // queries whose top 5 is checked against an exact scan
	latencySamples = 1000 // distinct queries timed (more for a longer -benchtime)
)

// BenchmarkSearchTop5 times Store.SearchRubrics(k=5), the rubric retrieval
// of every request without a rubric_id, on banks of 1,000, 10,000 and
// 100,000 vectors with their HNSW index, with a new query vector each time
// (so the search cache never answers). It reports the latency
// percentiles and recall@5: the share of the exact top 5 (every vector
// scored, each rubric by evaluation.TopTwo, as the memory store does) that
// the search returns. The bank is loaded with COPY. It needs
// TEST_DATABASE_URL; BENCH_SEARCH_SIZES (e.g. "1000,10000") picks sizes.
func BenchmarkSearchTop5(b *testing.B) {
	pgtest.URL(b)
	sizes := []int{1000, 10000, 100000}
	if v := os.Getenv("BENCH_SEARCH_SIZES"); v != "" {
		sizes = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(f)
			if err != nil {
				b.Fatalf("BENCH_SEARCH_SIZES: %v", err)
			}
			sizes = append(sizes, n)
		}
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("vectors=%d", n), func(b *testing.B) { benchSearch(b, n) })
	}
}

// benchStore is newStore for benchmarks: a migrated store in a schema of
// its own.
func benchStore(b testing.TB) *Store {
	b.Helper()
	s, err := Open(b.Context(), pgtest.NewSchema(b), quiet)
	if err != nil {
		b.Fatalf("Open: %v", err)
	}
	b.Cleanup(s.Close)
	if err := s.Migrate(b.Context()); err != nil {
		b.Fatalf("Migrate: %v", err)
	}
	return s
}

// benchBank is a generated bank: the rubrics' topics and the exact top 5
// of the recall queries.
type benchBank struct {
	topics  [][]float32
	queries [][]float32
	exact   [][]string
}

func benchSearch(b *testing.B, n int) {
	ctx := context.Background()
	s := benchStore(b)
	rng := rand.New(rand.NewPCG(uint64(n), 42))
	start := time.Now()
	bank := loadBank(b, ctx, s, rng, n)
	b.Logf("%d vectors loaded and indexed in %s", n, time.Since(start).Round(time.Millisecond))

	// Recall: the recall queries first, each once.
	var hits int
	for i, q := range bank.queries {
		ms, err := s.SearchRubrics(ctx, benchModel, q, 5)
		if err != nil {
			b.Fatal(err)
		}
		var got []string
		for _, m := range ms {
			got = append(got, m.Rubric.ID)
		}
		for _, id := range bank.exact[i] {
			if slices.Contains(got, id) {
				hits++
			}
		}
	}
	recall := float64(hits) / float64(5*len(bank.queries))
	if os.Getenv("BENCH_EXPLAIN") != "" {
		explainSearch(b, s, bank.queries[0], 5)
	}
	// BENCH_EF_SWEEP=100,200,400 reports the candidate query's recall and
	// latency at other ef_search values ("exact" for no index), to tune
	// minEfSearch.
	if v := os.Getenv("BENCH_EF_SWEEP"); v != "" {
		for _, ef := range strings.Split(v, ",") {
			r, p50 := efRecall(b, s, bank, ef)
			b.Logf("ef_search %s: recall@5 %.3f, candidate query p50 %.2f ms", ef, r, p50)
		}
	}

	// Latency: distinct queries, made before timing starts.
	qs := make([][]float32, latencySamples)
	for i := range qs {
		qs[i] = around(rng, bank.topics[rng.IntN(len(bank.topics))], queryNoise)
	}
	var lat []time.Duration
	i := 0
	for b.Loop() {
		var q []float32
		if i < len(qs) {
			q = qs[i]
		} else {
			b.StopTimer()
			q = around(rng, bank.topics[rng.IntN(len(bank.topics))], queryNoise)
			b.StartTimer()
		}
		i++
		t0 := time.Now()
		if _, err := s.SearchRubrics(ctx, benchModel, q, 5); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	pctl := func(p float64) float64 {
		j := int(math.Ceil(p/100*float64(len(lat)))) - 1
		return float64(lat[max(0, min(j, len(lat)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pctl(50), "p50-ms")
	b.ReportMetric(pctl(99), "p99-ms")
	b.ReportMetric(recall, "recall@5")
}

// around returns a unit vector at distance about noise from the unit
// vector c.
func around(rng *rand.Rand, c []float32, noise float64) []float32 {
	v := make([]float32, len(c))
	sd := noise / math.Sqrt(float64(len(c)))
	var norm float64
	for i := range v {
		x := float64(c[i]) + rng.NormFloat64()*sd
		v[i] = float32(x)
		norm += x * x
	}
	norm = math.Sqrt(norm)
	for i := range v {
		v[i] = float32(float64(v[i]) / norm)
	}
	return v
}

// loadBank stores n vectors in n/benchPerRubric rubrics with COPY, builds
// the HNSW index as PutVectors would, and computes the exact top 5 of the
// recall queries while the vectors stream past (they are never all held).
func loadBank(b *testing.B, ctx context.Context, s *Store, rng *rand.Rand, n int) *benchBank {
	b.Helper()
	rubrics := n / benchPerRubric
	bank := &benchBank{topics: make([][]float32, rubrics)}
	ids := make([]string, rubrics)
	var area []float32
	for r := range rubrics {
		if r%benchAreaSize == 0 {
			area = randomUnit(rng, benchDims)
		}
		bank.topics[r] = around(rng, area, topicNoise)
		ids[r] = fmt.Sprintf("b%06d", r)
	}
	for range recallQueries {
		bank.queries = append(bank.queries, around(rng, bank.topics[rng.IntN(rubrics)], queryNoise))
	}
	tops := make([][]evaluation.TopTwo, recallQueries)
	for q := range tops {
		tops[q] = make([]evaluation.TopTwo, rubrics)
	}

	copyRows := func(table string, cols []string, rows int, row func(i int) []any) {
		_, err := s.pool.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromFunc(func() func() ([]any, error) {
			i := 0
			return func() ([]any, error) {
				if i == rows {
					return nil, nil
				}
				i++
				return row(i - 1), nil
			}
		}()))
		if err != nil {
			b.Fatalf("COPY %s: %v", table, err)
		}
	}
	copyRows("rubrics", []string{"id", "latest_version"}, rubrics, func(i int) []any { return []any{ids[i], 1} })
	copyRows("rubric_versions", []string{"rubric_id", "version", "content_hash", "body"}, rubrics, func(i int) []any {
		r := rubric.Rubric{ID: ids[i], Version: 1, Title: "Rubric " + ids[i], Question: "Question " + ids[i] + "?"}
		return []any{ids[i], 1, r.ContentHash(), r}
	})
	copyRows("rubric_embeddings", []string{"rubric_id", "version", "model", "text", "embedding", "dims"}, n, func(i int) []any {
		r := i / benchPerRubric % rubrics
		v := around(rng, bank.topics[r], vectorNoise)
		for q, qv := range bank.queries {
			tops[q][r].Add(dot(qv, v))
		}
		return []any{ids[r], 1, benchModel, "text", pgvector.NewVector(v), benchDims}
	})

	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Release()
	// As an operator would for a large build: enough memory to build the
	// graph in memory, and both cores.
	for _, q := range []string{"SET maintenance_work_mem = '2GB'", "SET max_parallel_maintenance_workers = 2",
		createIndexDDL(indexName(benchModel, benchDims), hnswIndex{benchModel, benchDims}), "ANALYZE rubric_embeddings",
		"RESET maintenance_work_mem", "RESET max_parallel_maintenance_workers"} {
		if _, err := conn.Exec(ctx, q); err != nil {
			b.Fatalf("%s: %v", q, err)
		}
	}
	s.indexed.Store(indexName(benchModel, benchDims), struct{}{})

	for q := range tops {
		type scored struct {
			id  string
			sim float64
		}
		all := make([]scored, rubrics)
		for r := range rubrics {
			sim, _ := tops[q][r].Similarity()
			all[r] = scored{ids[r], sim}
		}
		sort.Slice(all, func(i, j int) bool {
			if all[i].sim != all[j].sim {
				return all[i].sim > all[j].sim
			}
			return all[i].id < all[j].id
		})
		var top []string
		for _, sc := range all[:min(5, len(all))] {
			top = append(top, sc.id)
		}
		bank.exact = append(bank.exact, top)
	}
	return bank
}

// dot is the cosine of two unit vectors, in float64 as pgvector computes
// it.
func dot(a, b []float32) float64 {
	var d float64
	for i := range a {
		d += float64(a[i]) * float64(b[i])
	}
	return d
}

// TestSearchCacheFollowsOtherReplicas checks that a search answered from
// one store's cache reflects what another store (another replica) changed
// in the bank meanwhile: a new rubric and its vectors, an archived rubric,
// a new version, replaced vectors.
func TestSearchCacheFollowsOtherReplicas(t *testing.T) {
	a := newStore(t)
	url := a.pool.Config().ConnString()
	other := open(t, url)
	ctx := t.Context()
	q := []float32{1, 0, 0}
	search := func(want ...string) {
		t.Helper()
		for range 2 { // the second search is answered from the cache
			ms, err := a.SearchRubrics(ctx, "m", q, 10)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range ms {
				got = append(got, fmt.Sprintf("%s@%d", m.Rubric.ID, m.Rubric.Version))
			}
			if !slices.Equal(got, want) {
				t.Fatalf("search = %v, want %v", got, want)
			}
		}
	}
	put := func(s *Store, id string, version int, vs ...[]float32) {
		t.Helper()
		var rv []evaluation.RubricVector
		for _, v := range vs {
			rv = append(rv, evaluation.RubricVector{RubricID: id, Version: version, Model: "m", Text: "t", Vector: v})
		}
		if err := s.PutVectors(ctx, rv); err != nil {
			t.Fatal(err)
		}
	}
	ra := rubric.Rubric{ID: "a", Version: 1, Title: "A"}
	rb := rubric.Rubric{ID: "b", Version: 1, Title: "B"}
	if _, err := a.SyncRubrics(ctx, []rubric.Rubric{ra, rb}); err != nil {
		t.Fatal(err)
	}
	put(a, "a", 1, []float32{1, 0, 0})
	put(a, "b", 1, []float32{0, 1, 0})
	search("a@1", "b@1")

	rc := rubric.Rubric{ID: "c", Version: 1, Title: "C"}
	if _, err := other.CreateRubric(ctx, rc); err != nil {
		t.Fatal(err)
	}
	search("a@1", "b@1") // no vectors yet: not searchable
	put(other, "c", 1, []float32{0.9, 0.1, 0})
	search("a@1", "c@1", "b@1")

	put(other, "b", 1, []float32{1, 0, 0}) // replaced vectors
	search("a@1", "b@1", "c@1")

	if err := other.ArchiveRubric(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	search("b@1", "c@1")

	rc.Title = "C, second version"
	if _, err := other.UpdateRubric(ctx, rc); err != nil {
		t.Fatal(err)
	}
	search("b@1") // the new version has no vectors yet
	put(other, "c", 2, []float32{1, 0, 0})
	search("b@1", "c@2") // equal similarity: by id
}

// explainSearch logs the plan of the search query, as SearchRubrics runs
// it, with its timing (BENCH_EXPLAIN=1).
func explainSearch(b *testing.B, s *Store, q []float32, k int) {
	ctx := context.Background()
	fetch, ef := searchLimits(k)
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, searchSettings, strconv.Itoa(ef)); err != nil {
		b.Fatal(err)
	}
	rows, err := tx.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+searchQuery(len(q)), pgvector.NewVector(q), benchModel, fetch)
	if err != nil {
		b.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range lines {
		if len(l) > 200 {
			l = l[:200] + "..."
		}
		b.Log(l)
	}
}

// efRecall runs the recall queries through the candidate query with
// ef_search ef, or with index scans off when ef is "exact".
func efRecall(b *testing.B, s *Store, bank *benchBank, ef string) (recall, p50ms float64) {
	ctx := context.Background()
	hits := 0
	var lat []time.Duration
	for i, q := range bank.queries {
		fetch, _ := searchLimits(5)
		err := s.inTx(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
			efv, scan := ef, "on"
			if ef == "exact" {
				efv, scan = "100", "off"
			}
			if _, err := tx.Exec(ctx, searchSettings, efv); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "SELECT set_config('enable_indexscan', $1, true)", scan); err != nil {
				return err
			}
			t0 := time.Now()
			rows, err := tx.Query(ctx, searchQuery(len(q)), pgvector.NewVector(q), benchModel, fetch)
			if err != nil {
				return err
			}
			scores, err := collectScores(rows)
			lat = append(lat, time.Since(t0))
			if err != nil {
				return err
			}
			for _, sc := range scores[:min(5, len(scores))] {
				if slices.Contains(bank.exact[i], sc.id) {
					hits++
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	slices.Sort(lat)
	return float64(hits) / float64(5*len(bank.queries)), float64(lat[len(lat)/2].Microseconds()) / 1000
}
