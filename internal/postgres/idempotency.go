package postgres

import (
	"context"
	"time"

	"github.com/assay-dev/assay/internal/idempotency"
)

var _ idempotency.Store = (*Store)(nil)

// claimKey inserts an in-flight record, replacing one older than the TTL,
// and returns nothing when another live record holds the key. The unique
// primary key makes two concurrent claims race safely: one inserts, the
// other updates nothing.
const claimKey = `
	INSERT INTO idempotency_keys AS k (owner, key, request_hash, created_at)
	VALUES ($1, $2, $3, $4)
	ON CONFLICT (owner, key) DO UPDATE SET
		request_hash = EXCLUDED.request_hash, done = false, status = NULL,
		content_type = NULL, location = NULL, body = NULL, created_at = EXCLUDED.created_at
	WHERE k.created_at < $5
	RETURNING true`

// Begin implements idempotency.Store.
func (s *Store) Begin(ctx context.Context, owner, key, hash string, now time.Time) (idempotency.Record, bool, error) {
	var claimed bool
	err := s.pool.QueryRow(ctx, claimKey, owner, key, hash, now, now.Add(-idempotency.TTL)).Scan(&claimed)
	if err == nil {
		return idempotency.Record{}, true, nil
	}
	if !isNoRows(err) {
		return idempotency.Record{}, false, classify("claiming idempotency key", err)
	}
	var (
		r          idempotency.Record
		status     *int
		ctype, loc *string
	)
	err = s.pool.QueryRow(ctx, `
		SELECT request_hash, done, status, content_type, location, body, created_at
		FROM idempotency_keys WHERE owner = $1 AND key = $2`, owner, key).
		Scan(&r.RequestHash, &r.Done, &status, &ctype, &loc, &r.Response.Body, &r.CreatedAt)
	if isNoRows(err) {
		// Abandoned between the two statements: claim it again.
		return s.Begin(ctx, owner, key, hash, now)
	}
	if err != nil {
		return r, false, classify("reading idempotency key", err)
	}
	if status != nil {
		r.Response.Status = *status
	}
	if ctype != nil {
		r.Response.ContentType = *ctype
	}
	if loc != nil {
		r.Response.Location = *loc
	}
	return r, false, nil
}

// Finish implements idempotency.Store.
func (s *Store) Finish(ctx context.Context, owner, key string, r idempotency.Response) error {
	_, err := s.pool.Exec(ctx, `
		UPDATE idempotency_keys SET done = true, status = $3, content_type = $4, location = $5, body = $6
		WHERE owner = $1 AND key = $2`, owner, key, r.Status, r.ContentType, r.Location, r.Body)
	return classify("storing idempotent response", err)
}

// Abandon implements idempotency.Store.
func (s *Store) Abandon(ctx context.Context, owner, key string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE owner = $1 AND key = $2 AND NOT done`, owner, key)
	return classify("abandoning idempotency key", err)
}

// PurgeIdempotency deletes records past the TTL; the server calls it now and
// then so the table does not grow without bound.
func (s *Store) PurgeIdempotency(ctx context.Context, now time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE created_at < $1`, now.Add(-idempotency.TTL))
	return tag.RowsAffected(), classify("purging idempotency keys", err)
}
