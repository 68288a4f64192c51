package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/fault"
)

// An evaluation is stored as its JSON in body, exactly as the API returns
// it; the other columns copy the fields that are filtered and sorted on.

// Evaluation implements evaluation.Store.
func (s *Store) Evaluation(ctx context.Context, id string) (evaluation.Evaluation, error) {
	u, err := uuid.Parse(id)
	if err != nil {
		// Not a UUID, so no evaluation has it: a 404, not a failed query.
		return evaluation.Evaluation{}, evaluation.NotFound("evaluation", id)
	}
	var e evaluation.Evaluation
	err = s.pool.QueryRow(ctx, `SELECT body FROM evaluations WHERE id = $1`, u).Scan(&e)
	if errors.Is(err, pgx.ErrNoRows) {
		return evaluation.Evaluation{}, evaluation.NotFound("evaluation", id)
	}
	if err != nil {
		return evaluation.Evaluation{}, classify("reading evaluation", err)
	}
	return e, nil
}

// ListEvaluations implements evaluation.Store with keyset pagination:
//
//	SELECT body FROM evaluations
//	WHERE [rubric_id = $1] [AND candidate_ref = $2]
//	  [AND (created_at, id) < ($3, $4)]
//	ORDER BY created_at DESC, id DESC
//	LIMIT $5
//
// Each page is a range of one of the evaluations indexes, however deep, and
// rows inserted meanwhile (newer, so before the cursor) neither shift nor
// repeat later pages.
func (s *Store) ListEvaluations(ctx context.Context, f evaluation.EvaluationFilter) ([]evaluation.Evaluation, error) {
	var (
		where []string
		args  []any
	)
	// arg adds a bind parameter and returns its placeholder.
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if f.APIKeyID != "" {
		where = append(where, "api_key_id = "+arg(f.APIKeyID))
	}
	if f.RubricID != "" {
		where = append(where, "rubric_id = "+arg(f.RubricID))
	}
	if f.CandidateRef != "" {
		where = append(where, "candidate_ref = "+arg(f.CandidateRef))
	}
	if f.After != nil {
		after, err := uuid.Parse(f.After.ID)
		if err != nil {
			return nil, fault.Param("cursor", "is not a cursor this server issued")
		}
		where = append(where, fmt.Sprintf("(created_at, id) < (%s, %s)", arg(f.After.CreatedAt), arg(after)))
	}
	q := "SELECT body FROM evaluations"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY created_at DESC, id DESC LIMIT " + arg(max(f.Limit, 0))

	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, classify("listing evaluations", err)
	}
	defer rows.Close()
	out := []evaluation.Evaluation{}
	for rows.Next() {
		var e evaluation.Evaluation
		if err := rows.Scan(&e); err != nil {
			return nil, classify("listing evaluations", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, classify("listing evaluations", err)
	}
	return out, nil
}
