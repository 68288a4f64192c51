package postgres

import (
	"context"

	"github.com/assay-dev/assay/internal/ratelimit"
)

var _ ratelimit.Limiter = (*Store)(nil)

// takeToken is ratelimit.Take in one atomic statement: refill the bucket for
// the time since its last update, capped at the burst ($3), at $2 tokens a
// second, then take a token if one is there. The upsert's row lock
// serialises concurrent requests for a bucket across every replica, and
// now() is the database's clock, so replicas with skewed clocks agree.
// Every SET expression sees the old row, so the refill is written out
// where it is needed.
const takeToken = `
	INSERT INTO rate_limits AS b (bucket, tokens, updated_at, allowed)
	VALUES ($1, $3::float8 - 1, now(), true)
	ON CONFLICT (bucket) DO UPDATE SET
		allowed = LEAST($3::float8, b.tokens + GREATEST(0, EXTRACT(EPOCH FROM now() - b.updated_at)) * $2::float8) >= 1,
		tokens = LEAST($3::float8, b.tokens + GREATEST(0, EXTRACT(EPOCH FROM now() - b.updated_at)) * $2::float8)
			- CASE WHEN LEAST($3::float8, b.tokens + GREATEST(0, EXTRACT(EPOCH FROM now() - b.updated_at)) * $2::float8) >= 1
				THEN 1 ELSE 0 END,
		updated_at = now()
	RETURNING tokens, allowed`

// Take implements ratelimit.Limiter with one round trip.
func (s *Store) Take(ctx context.Context, key string, l ratelimit.Limit) (ratelimit.Decision, error) {
	var (
		tokens  float64
		allowed bool
	)
	if err := s.pool.QueryRow(ctx, takeToken, key, l.RPS, float64(l.Burst)).Scan(&tokens, &allowed); err != nil {
		return ratelimit.Decision{}, classify("taking a rate-limit token", err)
	}
	return ratelimit.DecisionFrom(tokens, allowed, l), nil
}
