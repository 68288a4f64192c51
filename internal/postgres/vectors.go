package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/pgvector/pgvector-go"

	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/fault"
	"github.com/assay-dev/assay/internal/rubric"
)

const (
	// overFetch is how many nearest vectors SearchRubrics reads per rubric
	// wanted: a rubric has several vectors (question, aliases, title,
	// content) and only its best one counts.
	overFetch = 8
	// HNSW returns at most hnsw.ef_search rows, so it must be at least the
	// number fetched; pgvector allows 1 to 1000. 200 is the floor for a
	// good recall: at 100,000 vectors it gives recall@5 0.976 where 100
	// gives 0.948, for about 0.8 ms more (docs/performance.md).
	minEfSearch = 200
	maxEfSearch = 1000
	// maxIndexDims is the largest dimension pgvector's HNSW can index for
	// the vector type. Larger vectors are searched by a sequential scan.
	maxIndexDims = 2000
	// maxModelLen bounds a model name, which becomes part of index DDL.
	maxModelLen = 200
)

const selectToEmbed = `
	SELECT v.version, v.body
	FROM rubrics r
	JOIN rubric_versions v ON v.rubric_id = r.id AND v.version = r.latest_version
	WHERE r.archived_at IS NULL
	  AND NOT EXISTS (
		SELECT 1 FROM rubric_embeddings e
		WHERE e.rubric_id = r.id AND e.version = r.latest_version AND e.model = $1)
	ORDER BY r.id`

// RubricsToEmbed implements evaluation.Store.
func (s *Store) RubricsToEmbed(ctx context.Context, model string) ([]rubric.Rubric, error) {
	rows, err := s.pool.Query(ctx, selectToEmbed, model)
	if err != nil {
		return nil, classify("listing rubrics to embed", err)
	}
	rs, err := scanRubrics(rows)
	if err != nil {
		return nil, classify("listing rubrics to embed", err)
	}
	return rs, nil
}

const (
	deleteVectors = `DELETE FROM rubric_embeddings WHERE rubric_id = $1 AND version = $2 AND model = $3`
	insertVector  = `
		INSERT INTO rubric_embeddings (rubric_id, version, model, text, embedding, dims)
		VALUES ($1, $2, $3, $4, $5, $6)`
)

// hnswIndex is the partial HNSW index of one model's vectors of one
// dimension.
type hnswIndex struct {
	model string
	dims  int
}

// PutVectors implements evaluation.Store. The vectors of each rubric
// version and model in vs replace the stored ones, so storing the same
// vectors twice changes nothing.
func (s *Store) PutVectors(ctx context.Context, vs []evaluation.RubricVector) error {
	if len(vs) == 0 {
		return nil
	}
	missing := map[string]hnswIndex{}
	for _, v := range vs {
		if err := checkModel(v.Model); err != nil {
			return err
		}
		if len(v.Vector) == 0 {
			return fmt.Errorf("storing vectors: rubric %s version %d has an empty vector", v.RubricID, v.Version)
		}
		name := indexName(v.Model, len(v.Vector))
		if _, ok := s.indexed.Load(name); !ok && len(v.Vector) <= maxIndexDims {
			missing[name] = hnswIndex{v.Model, len(v.Vector)}
		}
	}
	type key struct {
		id, model string
		version   int
	}
	err := s.inTx(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
		if len(missing) > 0 {
			// Two replicas creating the same index at once would collide
			// (IF NOT EXISTS checks before it creates). The lock comes
			// before the inserts: CREATE INDEX waits for other writers of
			// the table, so taking it after them could deadlock.
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", indexLockKey); err != nil {
				return err
			}
		}
		batch := &pgx.Batch{}
		seen := map[key]bool{}
		for _, v := range vs {
			if k := (key{v.RubricID, v.Model, v.Version}); !seen[k] {
				seen[k] = true
				batch.Queue(deleteVectors, v.RubricID, v.Version, v.Model)
			}
			batch.Queue(insertVector, v.RubricID, v.Version, v.Model, v.Text, pgvector.NewVector(v.Vector), len(v.Vector))
		}
		if err := tx.SendBatch(ctx, batch).Close(); err != nil {
			return err
		}
		// Made after the inserts, a new index is built in bulk from them.
		for name, ix := range missing {
			if _, err := tx.Exec(ctx, createIndexDDL(name, ix)); err != nil {
				return fmt.Errorf("creating index %s for model %q: %w", name, ix.model, err)
			}
		}
		return nil
	})
	if hasCode(err, foreignKeyViolation) {
		return fault.Wrap(err, fault.NotFound, "a rubric version of these vectors does not exist")
	}
	if err != nil {
		return classify("storing vectors", err)
	}
	for name, ix := range missing {
		s.indexed.Store(name, struct{}{})
		s.log.Debug("vector index ready", "index", name, "model", ix.model, "dims", ix.dims)
	}
	return nil
}

// indexName names the index of a model's vectors of one dimension. A hash,
// not the model name, so any model name gives a short, valid identifier.
func indexName(model string, dims int) string {
	sum := sha256.Sum256([]byte(strconv.Itoa(dims) + ":" + model))
	return "rubric_embeddings_hnsw_" + hex.EncodeToString(sum[:8])
}

// createIndexDDL returns the statement creating ix. An HNSW index needs a
// fixed dimension, so it indexes the expression embedding::vector(dims),
// and only the rows of one model and dimension (which also keeps a model's
// vectors out of another's graph). DDL cannot take bind parameters, so the
// model name is spliced in as a literal: checkModel has rejected control
// characters and invalid UTF-8, and quoteLiteral escapes quotes and
// backslashes. The name is a hex hash and dims an int, so they need no
// escaping; Identifier quoting is belt and braces.
func createIndexDDL(name string, ix hnswIndex) string {
	return fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s ON rubric_embeddings
		USING hnsw ((embedding::vector(%d)) vector_cosine_ops)
		WHERE model = %s AND dims = %d`,
		pgx.Identifier{name}.Sanitize(), ix.dims, quoteLiteral(ix.model), ix.dims)
}

// checkModel rejects model names that cannot be spliced into DDL safely.
func checkModel(model string) error {
	ok := model != "" && len(model) <= maxModelLen && utf8.ValidString(model) &&
		strings.IndexFunc(model, unicode.IsControl) < 0
	if !ok {
		return fmt.Errorf("storing vectors: model name %q must be 1 to %d printable UTF-8 bytes", model, maxModelLen)
	}
	return nil
}

// quoteLiteral returns s as an SQL string literal. Doubling single quotes
// is enough when standard_conforming_strings is on (the default); a string
// with a backslash is written E'...' with the backslashes doubled, which
// reads back the same whatever that setting is.
func quoteLiteral(s string) string {
	lit := "'" + strings.ReplaceAll(s, "'", "''") + "'"
	if strings.Contains(s, `\`) {
		lit = "E" + strings.ReplaceAll(lit, `\`, `\\`)
	}
	return lit
}

// searchSettings applies to the search transaction only. The HNSW scan
// returns at most ef_search rows, so it must cover the over-fetch. A custom
// plan lets the planner see the model parameter's value, which it needs to
// prove the partial index's WHERE clause; a generic plan could not use the
// index.
const searchSettings = `
	SELECT set_config('hnsw.ef_search', $1, true),
	       set_config('plan_cache_mode', 'force_custom_plan', true)`

// searchQuery is the search in two steps. nearest takes the vectors
// nearest to $1 of model $2 from the HNSW index: its ORDER BY expression
// and WHERE clause match the index of createIndexDDL, which is why the
// dimension is part of the SQL text. The active latest versions among them
// are the candidates, and all their vectors get an exact similarity, so
// that a rubric's score (evaluation.TopTwo, computed by the caller) does
// not depend on which of its vectors the approximate scan happened to
// return. $3 is how many vectors nearest takes.
func searchQuery(dims int) string {
	return fmt.Sprintf(`
	WITH nearest AS (
		SELECT rubric_id, version
		FROM rubric_embeddings
		WHERE model = $2 AND dims = %[1]d
		ORDER BY embedding::vector(%[1]d) <=> $1::vector(%[1]d)
		LIMIT $3
	), candidates AS (
		SELECT DISTINCT n.rubric_id, n.version
		FROM nearest n
		JOIN rubrics r ON r.id = n.rubric_id AND r.latest_version = n.version AND r.archived_at IS NULL
	)
	SELECT e.rubric_id, e.version, 1 - (e.embedding::vector(%[1]d) <=> $1::vector(%[1]d))
	FROM candidates c
	JOIN rubric_embeddings e
	  ON e.rubric_id = c.rubric_id AND e.version = c.version AND e.model = $2 AND e.dims = %[1]d`, dims)
}

// searchLimits returns how many vectors to fetch for k rubrics and the
// ef_search that lets HNSW return them.
func searchLimits(k int) (fetch, efSearch int) {
	fetch = maxEfSearch
	if k < maxEfSearch/overFetch {
		fetch = k * overFetch
	}
	return fetch, max(fetch, minEfSearch)
}
