package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/fault"
)

// The parts of evaluation.Store that asynchronous grading needs: status
// transitions, queued rows inserted with their jobs, and batches.

// Pool is the connection pool, for River's driver, which must share it so
// that a job is inserted in the same transaction as its evaluation.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// UpdateEvaluation implements evaluation.Store with one conditional
// UPDATE: of two workers finishing the same job, one stores its result and
// the other is told it did not. created_at, in the column and the body,
// stays as it was.
func (s *Store) UpdateEvaluation(ctx context.Context, e evaluation.Evaluation, from ...string) (bool, error) {
	id, err := uuid.Parse(e.ID)
	if err != nil {
		return false, evaluation.NotFound("evaluation", e.ID)
	}
	tag, err := s.pool.Exec(ctx, `
		UPDATE evaluations
		SET status = $2, rubric_id = $3, rubric_version = $4, cache_key = NULLIF($5, ''),
		    body = jsonb_set($6::jsonb, '{created_at}', body->'created_at')
		WHERE id = $1 AND status = ANY($7)`,
		id, e.Status, e.Rubric.ID, e.Rubric.Version, e.CacheKey, e, from)
	if err != nil {
		return false, classify("updating evaluation", err)
	}
	if tag.RowsAffected() == 1 {
		return true, nil
	}
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM evaluations WHERE id = $1)`, id).Scan(&exists); err != nil {
		return false, classify("updating evaluation", err)
	}
	if !exists {
		return false, evaluation.NotFound("evaluation", e.ID)
	}
	return false, nil
}

// CreateQueued implements evaluation.Store.
func (s *Store) CreateQueued(ctx context.Context, b *evaluation.Batch, es []evaluation.Evaluation) error {
	return s.CreateQueuedTx(ctx, b, es, nil)
}

// CreateQueuedTx stores b (unless nil) and es, then calls insertJobs (if
// set) in the same transaction, so that the queue's jobs exist exactly
// when their evaluations do.
func (s *Store) CreateQueuedTx(ctx context.Context, b *evaluation.Batch, es []evaluation.Evaluation, insertJobs func(context.Context, pgx.Tx) error) error {
	err := s.inTx(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
		if b != nil {
			bid, err := uuid.Parse(b.ID)
			if err != nil {
				return fmt.Errorf("batch id %q is not a UUID", b.ID)
			}
			if _, err := tx.Exec(ctx, `
				INSERT INTO batches (id, kind, created_at, api_key_id, rubric_id, rubric_version, total, filled)
				VALUES ($1, $2, $3, NULLIF($4, ''), NULLIF($5, ''), NULLIF($6, 0), $7, $8)`,
				bid, b.Kind, b.CreatedAt.Truncate(time.Microsecond), b.APIKeyID, b.RubricID, b.RubricVersion, b.Total, b.Filled); err != nil {
				return err
			}
		}
		var batch pgx.Batch
		for _, e := range es {
			id, err := uuid.Parse(e.ID)
			if err != nil {
				return fmt.Errorf("id %q is not a UUID", e.ID)
			}
			var batchID *uuid.UUID
			if e.BatchID != "" {
				u, err := uuid.Parse(e.BatchID)
				if err != nil {
					return evaluation.NotFound("batch", e.BatchID)
				}
				batchID = &u
			}
			e.CreatedAt = e.CreatedAt.Truncate(time.Microsecond)
			batch.Queue(`
				INSERT INTO evaluations (id, created_at, rubric_id, rubric_version, candidate_ref, status, body, api_key_id, cache_key, batch_id)
				VALUES ($1, $2, $3, $4, NULLIF($5, ''), $6, $7, NULLIF($8, ''), NULLIF($9, ''), $10)`,
				id, e.CreatedAt, e.Rubric.ID, e.Rubric.Version, e.CandidateRef, e.Status, e, e.APIKeyID, e.CacheKey, batchID)
		}
		if len(es) > 0 {
			if err := tx.SendBatch(ctx, &batch).Close(); err != nil {
				return err
			}
		}
		if insertJobs != nil {
			return insertJobs(ctx, tx)
		}
		return nil
	})
	switch {
	case hasCode(err, uniqueViolation):
		return fault.Wrap(err, fault.Conflict, "an evaluation or batch with that id already exists")
	case hasCode(err, foreignKeyViolation):
		return fault.Wrap(err, fault.NotFound, "the batch does not exist")
	}
	return classify("storing queued evaluations", err)
}

// Batch implements evaluation.Store.
func (s *Store) Batch(ctx context.Context, id string) (evaluation.Batch, error) {
	u, err := uuid.Parse(id)
	if err != nil {
		return evaluation.Batch{}, evaluation.NotFound("batch", id)
	}
	b := evaluation.Batch{ID: u.String(), Counts: map[string]int{}}
	var apiKey, rubricID *string
	var version *int
	err = s.pool.QueryRow(ctx, `
		SELECT kind, created_at, api_key_id, rubric_id, rubric_version, total, filled
		FROM batches WHERE id = $1`, u).Scan(&b.Kind, &b.CreatedAt, &apiKey, &rubricID, &version, &b.Total, &b.Filled)
	if isNoRows(err) {
		return evaluation.Batch{}, evaluation.NotFound("batch", id)
	}
	if err != nil {
		return evaluation.Batch{}, classify("reading batch", err)
	}
	b.CreatedAt = b.CreatedAt.UTC()
	if apiKey != nil {
		b.APIKeyID = *apiKey
	}
	if rubricID != nil {
		b.RubricID = *rubricID
	}
	if version != nil {
		b.RubricVersion = *version
	}
	rows, err := s.pool.Query(ctx, `SELECT status, count(*) FROM evaluations WHERE batch_id = $1 GROUP BY status`, u)
	if err != nil {
		return evaluation.Batch{}, classify("counting batch", err)
	}
	var status string
	var n int
	_, err = pgx.ForEachRow(rows, []any{&status, &n}, func() error {
		b.Counts[status] = n
		return nil
	})
	if err != nil {
		return evaluation.Batch{}, classify("counting batch", err)
	}
	return b, nil
}

// BatchEvaluations implements evaluation.Store.
func (s *Store) BatchEvaluations(ctx context.Context, id string) ([]evaluation.Evaluation, error) {
	if _, err := s.Batch(ctx, id); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT body FROM evaluations WHERE batch_id = $1 ORDER BY id`, uuid.MustParse(id))
	if err != nil {
		return nil, classify("listing batch", err)
	}
	es, err := pgx.CollectRows(rows, pgx.RowTo[evaluation.Evaluation])
	if err != nil {
		return nil, classify("listing batch", err)
	}
	if es == nil {
		es = []evaluation.Evaluation{}
	}
	return es, nil
}

// FillBatch implements evaluation.Store.
func (s *Store) FillBatch(ctx context.Context, id string, total int) error {
	u, err := uuid.Parse(id)
	if err != nil {
		return evaluation.NotFound("batch", id)
	}
	tag, err := s.pool.Exec(ctx, `UPDATE batches SET total = $2, filled = true WHERE id = $1`, u, total)
	if err != nil {
		return classify("filling batch", err)
	}
	if tag.RowsAffected() == 0 {
		return evaluation.NotFound("batch", id)
	}
	return nil
}
