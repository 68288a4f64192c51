package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/assay-dev/assay/internal/auth"
	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/fault"
)

var _ auth.Store = (*Store)(nil)

// CreateKey implements auth.Store. Only the hash of the secret is stored.
func (s *Store) CreateKey(ctx context.Context, k auth.Key) error {
	_, err := s.pool.Exec(ctx, `
		INSERT INTO api_keys (id, name, scopes, hash, created_at, rate_rps, rate_burst)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		k.ID, k.Name, k.Scopes, k.Hash, k.CreatedAt, k.RateRPS, k.RateBurst)
	if hasCode(err, uniqueViolation) {
		return fault.Wrap(err, fault.Conflict, fmt.Sprintf("key %q already exists", k.ID))
	}
	return classify("creating API key", err)
}

const keyColumns = `id, name, scopes, hash, created_at, revoked_at, rate_rps, rate_burst`

func scanKey(row pgx.Row) (auth.Key, error) {
	var k auth.Key
	err := row.Scan(&k.ID, &k.Name, &k.Scopes, &k.Hash, &k.CreatedAt, &k.RevokedAt, &k.RateRPS, &k.RateBurst)
	return k, err
}

// Key implements auth.Store.
func (s *Store) Key(ctx context.Context, id string) (auth.Key, error) {
	k, err := scanKey(s.pool.QueryRow(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return auth.Key{}, evaluation.NotFound("key", id)
	}
	if err != nil {
		return auth.Key{}, classify("reading API key", err)
	}
	return k, nil
}

// ListKeys implements auth.Store.
func (s *Store) ListKeys(ctx context.Context) ([]auth.Key, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+keyColumns+` FROM api_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, classify("listing API keys", err)
	}
	defer rows.Close()
	var out []auth.Key
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, classify("listing API keys", err)
		}
		out = append(out, k)
	}
	return out, classify("listing API keys", rows.Err())
}

// RevokeKey implements auth.Store; revoking twice keeps the first time.
func (s *Store) RevokeKey(ctx context.Context, id string, at time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1`, id, at)
	if err != nil {
		return classify("revoking API key", err)
	}
	if tag.RowsAffected() == 0 {
		return evaluation.NotFound("key", id)
	}
	return nil
}

// HasKeys implements auth.Store.
func (s *Store) HasKeys(ctx context.Context) (bool, error) {
	var has bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM api_keys)`).Scan(&has)
	return has, classify("checking API keys", err)
}
