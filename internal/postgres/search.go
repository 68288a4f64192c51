package postgres

import (
	"context"
	"math"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgvector/pgvector-go"

	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/rubric"
)

// SearchRubrics implements evaluation.Store. HNSW is approximate: for a
// question bank of thousands of rubrics and k of a few it finds what the
// memory store's exact scan finds; a k over maxEfSearch/overFetch may get
// fewer rubrics.
//
// A search repeated while the bank is unchanged (most requests name one of
// a few questions) is answered from the search cache after one cheap
// statement checks the bank stamp; see searchcache.go. Otherwise it takes
// at most two round trips: the snapshot (searchSnapshot), then the bodies
// of the best rubrics not in the body cache.
func (s *Store) SearchRubrics(ctx context.Context, model string, vec []float32, k int) ([]evaluation.Match, error) {
	if k <= 0 || len(vec) == 0 {
		return nil, nil
	}
	key := s.cache.key(model, vec, k)
	if e, ok := s.cache.lookup(key, model, vec, k); ok {
		st, err := s.batch.stamps.Do(ctx, struct{}{})
		if err != nil {
			return nil, classify("searching rubrics", err)
		}
		if st == e.stamp {
			return e.matches(), nil
		}
	}
	withStamp := s.cache.wantStamp()
	scores, stamp, err := s.searchSnapshot(ctx, model, vec, k, withStamp)
	if err != nil {
		return nil, classify("searching rubrics", err)
	}
	if len(scores) > k {
		scores = scores[:k]
	}
	rs, err := s.versions(ctx, scores)
	if err != nil {
		return nil, classify("searching rubrics", err)
	}
	var out []evaluation.Match
	for i, sc := range scores {
		out = append(out, evaluation.Match{Rubric: rs[i], Similarity: sc.similarity})
	}
	if withStamp && s.cache.cacheable(stamp) {
		s.cache.searches.put(key, &searchEntry{model: model, k: k, vec: slices.Clone(vec), stamp: stamp, out: slices.Clone(out)})
	}
	return out, nil
}

// searchSnapshot reads the candidates' scores, and the bank stamp when
// asked, in one read-only repeatable-read transaction, so that both see the
// same snapshot: BEGIN, the settings, the stamp, the search and COMMIT go
// to the server as one pipeline, one round trip instead of five.
func (s *Store) searchSnapshot(ctx context.Context, model string, vec []float32, k int, withStamp bool) (scores []score, st bankStamp, err error) {
	fetch, ef := searchLimits(k)
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, st, err
	}
	defer conn.Release()
	b := &pgx.Batch{}
	b.Queue("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
	b.Queue(searchSettings, strconv.Itoa(ef))
	if withStamp {
		b.Queue(bankStampQuery).QueryRow(func(row pgx.Row) error {
			return row.Scan(&st.maxVectorID, &st.rubrics, &st.rowsHash)
		})
	}
	b.Queue(searchQuery(len(vec)), pgvector.NewVector(vec), model, fetch).Query(func(rows pgx.Rows) error {
		scores, err = collectScores(rows)
		return err
	})
	b.Queue("COMMIT")
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		// A failed statement leaves the transaction aborted; end it so
		// the connection goes back to the pool usable (the pool discards
		// one still in a transaction).
		if pc := conn.Conn().PgConn(); !pc.IsClosed() && pc.TxStatus() != 'I' {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			_, _ = conn.Exec(rctx, "ROLLBACK")
			cancel()
		}
		return nil, st, err
	}
	return scores, st, nil
}

// versions returns the rubric bodies of scores, from the body cache or in
// one round trip. A stored version never changes (rubric_versions is
// append-only), so they need not come from the search's snapshot.
func (s *Store) versions(ctx context.Context, scores []score) ([]rubric.Rubric, error) {
	rs := make([]rubric.Rubric, len(scores))
	cached := make([]bool, len(scores))
	batch := &pgx.Batch{}
	for i, sc := range scores {
		if rs[i], cached[i] = s.cache.bodies.get(versionKey{sc.id, sc.version}); !cached[i] {
			batch.Queue(selectVersion, sc.id, sc.version)
		}
	}
	if batch.Len() == 0 {
		return rs, nil
	}
	br := s.pool.SendBatch(ctx, batch)
	defer br.Close()
	for i, sc := range scores {
		if cached[i] {
			continue
		}
		var err error
		if rs[i], err = scanRubric(br.QueryRow()); err != nil {
			return nil, err
		}
		s.cache.bodies.put(versionKey{sc.id, sc.version}, rs[i])
	}
	return rs, br.Close()
}

// score is a candidate rubric's similarity.
type score struct {
	id         string
	version    int
	similarity float64
}

// collectScores reads the rows of searchQuery into the candidates' scores,
// most similar first, ties broken by id as in the memory store.
func collectScores(rows pgx.Rows) ([]score, error) {
	defer rows.Close()
	type key struct {
		id      string
		version int
	}
	tops := map[key]*evaluation.TopTwo{}
	for rows.Next() {
		var (
			k   key
			sim float64
		)
		if err := rows.Scan(&k.id, &k.version, &sim); err != nil {
			return nil, err
		}
		if math.IsNaN(sim) {
			// pgvector's answer for a zero vector; the memory store's
			// cosine says 0.
			sim = 0
		}
		if tops[k] == nil {
			tops[k] = &evaluation.TopTwo{}
		}
		tops[k].Add(sim)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]score, 0, len(tops))
	for k, top := range tops {
		sim, _ := top.Similarity()
		out = append(out, score{k.id, k.version, sim})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].similarity != out[j].similarity {
			return out[i].similarity > out[j].similarity
		}
		return out[i].id < out[j].id
	})
	return out, nil
}
