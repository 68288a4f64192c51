package postgres

import (
	"context"

	"github.com/assay-dev/assay/internal/ratelimit"
)

var (
	_ ratelimit.Limiter    = (*Store)(nil)
	_ ratelimit.BatchTaker = (*Store)(nil)
)

// refill is the bucket's tokens now: its old tokens plus the time since
// its last update at $2 tokens a second, capped at the burst ($3). now() is
// the database's clock, so replicas with skewed clocks agree.
const refill = `LEAST($3::float8, b.tokens + GREATEST(0, EXTRACT(EPOCH FROM now() - b.updated_at)) * $2::float8)`

// takeTokens is ratelimit.Take for $4 requests in one atomic statement:
// refill the bucket, grant as many of the $4 as there are whole tokens,
// and return the tokens left and the number granted. A new bucket starts
// full. The upsert's row lock serialises takes for a bucket across every
// replica. Every SET expression sees the old row, so the refill is
// written out where it is needed; allowed is kept for replicas of the
// previous version, which read it.
const takeTokens = `
	INSERT INTO rate_limits AS b (bucket, tokens, updated_at, allowed, granted)
	VALUES ($1, $3::float8 - LEAST($4::int, floor($3::float8)), now(),
		LEAST($4::int, floor($3::float8)) >= 1, LEAST($4::int, floor($3::float8)))
	ON CONFLICT (bucket) DO UPDATE SET
		granted = LEAST($4::int, floor(` + refill + `)),
		allowed = LEAST($4::int, floor(` + refill + `)) >= 1,
		tokens = ` + refill + ` - LEAST($4::int, floor(` + refill + `)),
		updated_at = now()
	RETURNING tokens, granted`

// TakeN implements ratelimit.BatchTaker with one round trip.
func (s *Store) TakeN(ctx context.Context, key string, l ratelimit.Limit, n int) (granted int, tokens float64, err error) {
	if err := s.pool.QueryRow(ctx, takeTokens, key, l.RPS, float64(l.Burst), n).Scan(&tokens, &granted); err != nil {
		return 0, 0, classify("taking rate-limit tokens", err)
	}
	return granted, tokens, nil
}

// Take implements ratelimit.Limiter for one request, uncoalesced; the
// server wraps the store in a ratelimit.Coalescing instead.
func (s *Store) Take(ctx context.Context, key string, l ratelimit.Limit) (ratelimit.Decision, error) {
	granted, tokens, err := s.TakeN(ctx, key, l, 1)
	if err != nil {
		return ratelimit.Decision{}, err
	}
	return ratelimit.DecisionFrom(tokens, granted == 1, l), nil
}
