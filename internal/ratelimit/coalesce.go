package ratelimit

import (
	"context"
	"sync"
	"time"
)

// BatchTaker takes up to n tokens from a bucket in one step: it refills the
// bucket, grants min(n, whole tokens) and reports how many it granted and
// the tokens left. The PostgreSQL limiter does it in one statement.
type BatchTaker interface {
	TakeN(ctx context.Context, key string, l Limit, n int) (granted int, tokens float64, err error)
}

// Coalescing is a Limiter over a BatchTaker that serves the requests for a
// bucket arriving while a take for it is running with one take for all of
// them. Every request of one API key (or address) goes through a single
// row, so a shared limiter costs one statement per request and the row lock
// serialises them; coalesced, a burst of 200 requests costs a handful.
// Decisions are exactly those of taking the tokens one by one in arrival
// order, at the moment of the take.
type Coalescing struct {
	next BatchTaker
	// timeout bounds one take; it runs for several callers, so no single
	// caller's context can cancel it.
	timeout time.Duration

	mu     sync.Mutex
	queues map[string][]*waiter // bucket -> callers waiting; present while a take runs
}

type waiter struct {
	l    Limit
	done chan result // buffered: the taker never blocks on a caller that left
}

type result struct {
	d   Decision
	err error
}

// NewCoalescing returns a Limiter that coalesces takes over next. A take
// that runs longer than timeout fails for every caller it serves.
func NewCoalescing(next BatchTaker, timeout time.Duration) *Coalescing {
	return &Coalescing{next: next, timeout: timeout, queues: map[string][]*waiter{}}
}

// Take implements Limiter. It waits for its bucket's take, or for ctx.
func (c *Coalescing) Take(ctx context.Context, key string, l Limit) (Decision, error) {
	w := &waiter{l: l, done: make(chan result, 1)}
	c.mu.Lock()
	q, running := c.queues[key]
	c.queues[key] = append(q, w)
	c.mu.Unlock()
	if !running {
		go c.drain(key)
	}
	select {
	case r := <-w.done:
		return r.d, r.err
	case <-ctx.Done():
		return Decision{}, ctx.Err()
	}
}

// drain takes for the bucket's waiters, batch after batch, until none is
// left; the bucket's queue exists exactly while drain runs.
func (c *Coalescing) drain(key string) {
	for {
		c.mu.Lock()
		batch := c.queues[key]
		if len(batch) == 0 {
			delete(c.queues, key)
			c.mu.Unlock()
			return
		}
		c.queues[key] = batch[:0:0]
		c.mu.Unlock()
		c.serve(key, batch)
	}
}

// serve takes for one batch. Callers of one bucket normally share a limit;
// runs of callers with another limit (a key's limit changed meanwhile) get
// a take of their own, in order.
func (c *Coalescing) serve(key string, batch []*waiter) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	for len(batch) > 0 {
		l := batch[0].l
		n := 1
		for n < len(batch) && batch[n].l == l {
			n++
		}
		run := batch[:n]
		batch = batch[n:]
		granted, tokens, err := c.next.TakeN(ctx, key, l, len(run))
		for i, w := range run {
			switch {
			case err != nil:
				w.done <- result{err: err}
			case i < granted:
				// As if taken one by one: the i-th of g left g-1-i more.
				w.done <- result{d: DecisionFrom(tokens+float64(granted-1-i), true, l)}
			default:
				w.done <- result{d: DecisionFrom(tokens, false, l)}
			}
		}
	}
}
