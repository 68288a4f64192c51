package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/assay-dev/assay/internal/coalesce"
	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/fault"
)

// Every grading runs three statements: the bank stamp (to serve a cached
// search), the evaluation-cache lookup and the insert of the evaluation.
// Under load each is coalesced (internal/coalesce): the requests that
// arrive while one runs are served by the next, one statement for all of
// them. The database then parses, plans and commits once per batch instead
// of once per request, and the server does one round trip. With one
// request at a time nothing waits. Profiles under 200 clients put a third
// of the server's CPU outside the grader in these three statements, and
// most of PostgreSQL's.

const (
	// batchSize bounds one statement's arrays.
	batchSize = 128
	// batchTimeout bounds one coalesced statement, which runs for several
	// requests and so under none of their contexts.
	batchTimeout = 10 * time.Second
)

// batchers are the store's coalesced statements.
type batchers struct {
	stamps  *coalesce.Batcher[struct{}, bankStamp]
	lookups *coalesce.Batcher[string, cachedRow]
	inserts *coalesce.Batcher[evaluation.Evaluation, error]
}

func (s *Store) newBatchers() *batchers {
	return &batchers{
		stamps:  coalesce.New(batchSize, batchTimeout, s.readStamps),
		lookups: coalesce.New(batchSize, batchTimeout, s.lookupCached),
		inserts: coalesce.New(batchSize, batchTimeout, s.insertEvaluations),
	}
}

// readStamps reads the bank stamp once for a batch: each caller's batch
// started after its call, so the stamp is at least as new as the caller.
func (s *Store) readStamps(ctx context.Context, in []struct{}) ([]bankStamp, error) {
	st, err := readStamp(ctx, s.pool)
	if err != nil {
		return nil, err
	}
	out := make([]bankStamp, len(in))
	for i := range out {
		out[i] = st
	}
	return out, nil
}

// selectCached reads, for each cache key, the body of its newest completed
// evaluation: the first entry of evaluations_cache_idx (migration 0004),
// however many cache hits have stored copies under the key. A key without
// one has no row.
const selectCached = `
	SELECT k.i, e.id::text, e.body
	FROM unnest($1::text[]) WITH ORDINALITY AS k(key, i)
	CROSS JOIN LATERAL (
		SELECT id, body FROM evaluations
		WHERE cache_key = k.key AND status = 'completed'
		ORDER BY created_at DESC LIMIT 1
	) e`

// cachedRow is a key's newest completed evaluation: its id and JSON.
type cachedRow struct {
	id   string
	body []byte
}

// lookupCached returns each key's cached evaluation, a zero row for none.
// Keys repeated in the batch (one answer sent by many clients) are read
// once.
func (s *Store) lookupCached(ctx context.Context, keys []string) ([]cachedRow, error) {
	distinct := make([]string, 0, len(keys))
	slot := make(map[string]int, len(keys))
	for _, k := range keys {
		if _, ok := slot[k]; !ok {
			slot[k] = len(distinct)
			distinct = append(distinct, k)
		}
	}
	found := make([]cachedRow, len(distinct))
	rows, err := s.pool.Query(ctx, selectCached, distinct)
	if err != nil {
		return nil, err
	}
	var (
		i   int64
		row cachedRow
	)
	_, err = pgx.ForEachRow(rows, []any{&i, &row.id, &row.body}, func() error {
		if i < 1 || int(i) > len(found) {
			return fmt.Errorf("cache lookup returned ordinal %d of %d", i, len(found))
		}
		found[i-1] = row // pgx gives each row a fresh body slice
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]cachedRow, len(keys))
	for j, k := range keys {
		out[j] = found[slot[k]]
	}
	return out, nil
}

// CachedEvaluation implements evaluation.Store. A completed evaluation
// never changes, so one decoded before is reused by its id: decoding the
// 7 to 12 KB body was a third of the server's CPU for a cache hit. The
// result may share slices with other callers'; the service only copies
// them into a new evaluation.
func (s *Store) CachedEvaluation(ctx context.Context, key string) (evaluation.Evaluation, error) {
	row, err := s.batch.lookups.Do(ctx, key)
	if err != nil {
		return evaluation.Evaluation{}, classify("reading cached evaluation", err)
	}
	if row.body == nil {
		return evaluation.Evaluation{}, evaluation.NotFound("cached evaluation", key)
	}
	if e, ok := s.cache.hits.get(row.id); ok {
		return e, nil
	}
	var e evaluation.Evaluation
	if err := json.Unmarshal(row.body, &e); err != nil {
		return evaluation.Evaluation{}, fmt.Errorf("reading cached evaluation: decoding: %w", err)
	}
	s.cache.hits.put(row.id, e)
	return e, nil
}

// evaluationColumns are the columns a batch of evaluations is copied
// into. Those beside body copy the fields that are filtered and sorted on;
// an empty string is stored as NULL.
var evaluationColumns = []string{"id", "created_at", "rubric_id", "rubric_version", "candidate_ref", "status", "body", "api_key_id", "cache_key"}

// insertEvaluations stores es; out[i] is es[i]'s error. One COPY is all
// or nothing. When the server refused a batch of several (a PgError: no
// row was written), each is stored on its own, with a timeout of its own,
// so that only the evaluations at fault (a duplicate id) fail. Any other
// error (the connection dropped mid-COPY) may have come after the commit,
// so it is every caller's: retrying could report a stored evaluation as a
// duplicate of itself.
func (s *Store) insertEvaluations(ctx context.Context, es []evaluation.Evaluation) ([]error, error) {
	out := make([]error, len(es))
	var (
		rows [][]any
		at   []int // rows[j] is es[at[j]]
	)
	for i, e := range es {
		row, err := evaluationRow(e)
		if err != nil {
			out[i] = err // never sent
			continue
		}
		rows, at = append(rows, row), append(at, i)
	}
	if len(rows) == 0 {
		return out, nil
	}
	err := s.copyEvaluations(ctx, rows)
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		return out, nil
	case len(rows) > 1 && errors.As(err, &pgErr):
		for j, i := range at {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), batchTimeout)
			out[i] = conflict(s.copyEvaluations(rctx, rows[j:j+1]), es[i].ID)
			cancel()
		}
	default:
		for _, i := range at {
			out[i] = conflict(err, es[i].ID)
		}
	}
	return out, nil
}

// conflict makes the unique violation of a single row a Conflict.
func conflict(err error, id string) error {
	if hasCode(err, uniqueViolation) {
		return fault.Wrap(err, fault.Conflict, fmt.Sprintf("evaluation %q already exists", id))
	}
	return err
}

// evaluationRow is e as a row of evaluationColumns.
func evaluationRow(e evaluation.Evaluation) ([]any, error) {
	id, err := uuid.Parse(e.ID)
	if err != nil {
		return nil, fmt.Errorf("id %q is not a UUID", e.ID)
	}
	// timestamptz keeps microseconds. Truncating here makes the body agree
	// with the column, so a cursor made from a returned evaluation points
	// at exactly its row. The service already truncates.
	created := e.CreatedAt.Truncate(time.Microsecond)
	body := e.JSON
	if body == nil || !created.Equal(e.CreatedAt) {
		e.CreatedAt = created
		if body, err = json.Marshal(e); err != nil {
			return nil, fmt.Errorf("encoding evaluation %s: %w", e.ID, err)
		}
	}
	return []any{id, created, e.Rubric.ID, int32(e.Rubric.Version), orNull(e.CandidateRef),
		e.Status, body, orNull(e.APIKeyID), orNull(e.CacheKey)}, nil
}

// copyEvaluations stores rows with one COPY, all or nothing. COPY rather
// than a multi-row INSERT of arrays: pgx encodes a statement's parameters
// into a buffer that starts small for every statement and grows by
// copying, which for an array of 7 to 12 KB bodies cost several times
// their size in garbage; COPY streams the rows through the connection's
// own buffer.
func (s *Store) copyEvaluations(ctx context.Context, rows [][]any) error {
	_, err := s.pool.CopyFrom(ctx, pgx.Identifier{"evaluations"}, evaluationColumns, pgx.CopyFromRows(rows))
	return err
}

// orNull is s, or SQL NULL for "".
func orNull(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// CreateEvaluation implements evaluation.Store.
func (s *Store) CreateEvaluation(ctx context.Context, e evaluation.Evaluation) error {
	err, batchErr := s.batch.inserts.Do(ctx, e)
	if batchErr != nil {
		err = batchErr
	}
	return classify("storing evaluation", err)
}
