// Package ratelimit limits request rates per API key with token buckets. The
// in-memory limiter serves one process; the PostgreSQL one (in
// internal/postgres) shares buckets across replicas.
package ratelimit

import (
	"context"
	"math"
	"sync"
	"time"
)

// Limit is a token bucket's shape: it refills at RPS tokens per second up to
// Burst tokens.
type Limit struct {
	RPS   float64
	Burst int
}

// Decision is the outcome of one request against a bucket, with what the
// RateLimit-* headers report.
type Decision struct {
	Allowed   bool
	Limit     int           // the burst: requests allowed at once
	Remaining int           // whole tokens left after this request
	Reset     time.Duration // until the bucket is full again
	// RetryAfter is how long until one token is available, when denied.
	RetryAfter time.Duration
}

// Limiter takes one token from the bucket named key.
type Limiter interface {
	Take(ctx context.Context, key string, l Limit) (Decision, error)
}

// Bucket is the state of one token bucket.
type Bucket struct {
	Tokens  float64
	Updated time.Time
}

// Take refills b for the time elapsed since its last update, then takes a
// token if one is there. It is the one definition of the algorithm; the
// PostgreSQL limiter runs the same arithmetic in SQL.
func Take(b Bucket, l Limit, now time.Time) (Bucket, Decision) {
	burst := float64(l.Burst)
	if b.Updated.IsZero() {
		b.Tokens = burst
	} else if elapsed := now.Sub(b.Updated).Seconds(); elapsed > 0 {
		b.Tokens = math.Min(burst, b.Tokens+elapsed*l.RPS)
	}
	b.Updated = now
	allowed := b.Tokens >= 1
	if allowed {
		b.Tokens--
	}
	return b, DecisionFrom(b.Tokens, allowed, l)
}

// DecisionFrom reports a bucket left with tokens after a request that was
// allowed or not.
func DecisionFrom(tokens float64, allowed bool, l Limit) Decision {
	d := Decision{Allowed: allowed, Limit: l.Burst, Remaining: int(math.Floor(tokens))}
	if !allowed {
		d.RetryAfter = seconds((1 - tokens) / l.RPS)
	}
	d.Reset = seconds((float64(l.Burst) - tokens) / l.RPS)
	return d
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// Memory is a Limiter for one process.
type Memory struct {
	mu      sync.Mutex
	buckets map[string]Bucket
	now     func() time.Time
}

// NewMemory returns an in-process limiter.
func NewMemory() *Memory { return &Memory{buckets: map[string]Bucket{}, now: time.Now} }

// Take implements Limiter.
func (m *Memory) Take(_ context.Context, key string, l Limit) (Decision, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, d := Take(m.buckets[key], l, m.now())
	m.buckets[key] = b
	if len(m.buckets) > 100_000 {
		m.evictFull()
	}
	return d, nil
}

// evictFull drops buckets idle for an hour, which have refilled for any
// sensible limit, so forgetting them changes nothing; it bounds memory when
// many clients come and go.
func (m *Memory) evictFull() {
	now := m.now()
	for k, b := range m.buckets {
		if now.Sub(b.Updated) > time.Hour {
			delete(m.buckets, k)
		}
	}
}
