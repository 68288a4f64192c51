// Package coalesce runs concurrent calls of one operation as batches: the
// calls that arrive while a batch runs wait, and run together as the next
// batch. Under load a statement per request becomes a statement per batch
// (the database does the work of one round trip, one parse and one commit
// for many requests); with one caller at a time nothing waits and the
// batch is just that call, run in the caller's goroutine.
//
// A call always runs in a batch that starts after the call was made, so a
// read served by a batch sees everything committed before the call.
package coalesce

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// RunFunc runs one batch: out[i] is the result of in[i]. An error fails the
// whole batch; per-call failures belong in Out.
type RunFunc[In, Out any] func(ctx context.Context, in []In) ([]Out, error)

// Batcher coalesces calls to a RunFunc.
type Batcher[In, Out any] struct {
	run RunFunc[In, Out]
	max int
	// timeout bounds a batch run for waiting callers: it runs for several
	// of them, so no single caller's context can cancel it.
	timeout time.Duration

	mu      sync.Mutex
	queue   []*call[In, Out]
	running bool
}

type call[In, Out any] struct {
	ctx  context.Context
	in   In
	done chan result[Out] // buffered: a batch never blocks on a caller that left
	// state moves once, from queued to started (by the batch) or to
	// abandoned (by the caller whose ctx ended first): a call that started
	// is waited for, so a caller is never told it failed when its write
	// happened; an abandoned one never runs.
	state atomic.Int32
}

const (
	queued int32 = iota
	started
	abandoned
)

type result[Out any] struct {
	out Out
	err error
}

// New returns a Batcher that runs at most size calls in one batch and
// gives a batch of waiting callers at most timeout.
func New[In, Out any](size int, timeout time.Duration, run RunFunc[In, Out]) *Batcher[In, Out] {
	return &Batcher[In, Out]{run: run, max: max(size, 1), timeout: timeout}
}

// Do runs in, alone when nothing else is running, else in the next batch.
// It returns when its batch has run, or when ctx is done before its batch
// started, in which case the call is left out of the batch. A call runs for
// at most the timeout, alone or in a batch.
func (b *Batcher[In, Out]) Do(ctx context.Context, in In) (Out, error) {
	var zero Out
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	b.mu.Lock()
	if !b.running {
		// Nothing runs: run alone, here, under the caller's context.
		b.running = true
		b.mu.Unlock()
		// Bounded like a batch: every later call waits for this one.
		rctx, cancel := context.WithTimeout(ctx, b.timeout)
		outs, err := b.runSafe(rctx, []In{in})
		cancel()
		b.finish()
		if err == nil && len(outs) != 1 {
			err = fmt.Errorf("coalesce: a batch of 1 returned %d results", len(outs))
		}
		if err != nil {
			return zero, err
		}
		return outs[0], nil
	}
	c := &call[In, Out]{ctx: ctx, in: in, done: make(chan result[Out], 1)}
	b.queue = append(b.queue, c)
	b.mu.Unlock()
	select {
	case r := <-c.done:
		return r.out, r.err
	case <-ctx.Done():
		if c.state.CompareAndSwap(queued, abandoned) {
			return zero, ctx.Err()
		}
		// Its batch has started: wait for it (at most the timeout).
		r := <-c.done
		return r.out, r.err
	}
}

// Queued reports how many calls wait for a batch.
func (b *Batcher[In, Out]) Queued() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.queue)
}

// finish ends a run: the calls queued meanwhile are drained by a goroutine
// of their own, so the caller that ran alone returns at once.
func (b *Batcher[In, Out]) finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.queue) == 0 {
		b.running = false
		return
	}
	go b.drain()
}

// drain runs the queued calls batch after batch until none is left.
func (b *Batcher[In, Out]) drain() {
	for {
		b.mu.Lock()
		if len(b.queue) == 0 {
			b.running = false
			b.mu.Unlock()
			return
		}
		n := min(len(b.queue), b.max)
		batch := b.queue[:n:n]
		// A fresh slice for the rest, so the batch's calls are not kept
		// alive by the queue's backing array.
		b.queue = append([]*call[In, Out](nil), b.queue[n:]...)
		b.mu.Unlock()
		b.serve(batch)
	}
}

// serve runs one batch of waiting calls.
func (b *Batcher[In, Out]) serve(batch []*call[In, Out]) {
	live := batch[:0]
	for _, c := range batch {
		if c.ctx.Err() == nil && c.state.CompareAndSwap(queued, started) {
			live = append(live, c)
		}
	}
	if len(live) == 0 {
		return
	}
	in := make([]In, len(live))
	for i, c := range live {
		in[i] = c.in
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	outs, err := b.runSafe(ctx, in)
	if err == nil && len(outs) != len(in) {
		err = fmt.Errorf("coalesce: a batch of %d returned %d results", len(in), len(outs))
	}
	for i, c := range live {
		if err != nil {
			c.done <- result[Out]{err: err}
			continue
		}
		c.done <- result[Out]{out: outs[i]}
	}
}

// runSafe runs a batch, turning a panic into an error: a batch serves
// several callers, and one bad input must not stop the batcher for good.
func (b *Batcher[In, Out]) runSafe(ctx context.Context, in []In) (outs []Out, err error) {
	defer func() {
		if p := recover(); p != nil {
			outs, err = nil, fmt.Errorf("coalesce: a batch of %d panicked: %v", len(in), p)
		}
	}()
	return b.run(ctx, in)
}
