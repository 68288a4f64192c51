package ratelimit

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// slowBuckets is a BatchTaker over in-memory buckets at a frozen time, each
// take lasting delay, that records the batch sizes it was asked for.
type slowBuckets struct {
	delay time.Duration
	err   error

	mu      sync.Mutex
	buckets map[string]Bucket
	batches []int
}

func (s *slowBuckets) TakeN(ctx context.Context, key string, l Limit, n int) (int, float64, error) {
	time.Sleep(s.delay)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batches = append(s.batches, n)
	if s.err != nil {
		return 0, 0, s.err
	}
	now := time.Unix(1000, 0)
	b := s.buckets[key]
	granted := 0
	for range n {
		var d Decision
		b, d = Take(b, l, now)
		if d.Allowed {
			granted++
		}
	}
	s.buckets[key] = b
	return granted, b.Tokens, nil
}

func TestCoalescing(t *testing.T) {
	for _, tc := range []struct {
		name            string
		callers, burst  int
		wantAllowed     int
		wantFewerTakes  bool
		wantRemainingOK func(allowed []int) bool
	}{
		{name: "one caller", callers: 1, burst: 5, wantAllowed: 1},
		{name: "burst larger than callers", callers: 100, burst: 150, wantAllowed: 100, wantFewerTakes: true},
		{name: "burst smaller than callers", callers: 200, burst: 50, wantAllowed: 50, wantFewerTakes: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := &slowBuckets{delay: 2 * time.Millisecond, buckets: map[string]Bucket{}}
			c := NewCoalescing(fake, time.Second)
			l := Limit{RPS: 0.001, Burst: tc.burst}
			ds := make([]Decision, tc.callers)
			errs := make([]error, tc.callers)
			var wg sync.WaitGroup
			for i := range tc.callers {
				wg.Go(func() { ds[i], errs[i] = c.Take(context.Background(), "key:a", l) })
			}
			wg.Wait()
			var remaining []int
			for i, d := range ds {
				if errs[i] != nil {
					t.Fatalf("caller %d: %v", i, errs[i])
				}
				if d.Allowed {
					remaining = append(remaining, d.Remaining)
				} else if d.RetryAfter <= 0 {
					t.Errorf("caller %d denied with Retry-After %v", i, d.RetryAfter)
				}
			}
			if len(remaining) != tc.wantAllowed {
				t.Errorf("allowed %d, want %d", len(remaining), tc.wantAllowed)
			}
			// As if one by one: the allowed callers saw burst-1, burst-2, ...
			slices.Sort(remaining)
			for i, r := range remaining {
				if want := tc.burst - len(remaining) + i; r != want {
					t.Fatalf("Remaining of the allowed callers = %v, want %d.. %d", remaining, tc.burst-len(remaining), tc.burst-1)
				}
			}
			total := 0
			for _, n := range fake.batches {
				total += n
			}
			if total != tc.callers {
				t.Errorf("tokens asked for = %d, want %d (one per caller)", total, tc.callers)
			}
			if tc.wantFewerTakes && len(fake.batches) >= tc.callers/2 {
				t.Errorf("%d takes for %d callers: not coalesced", len(fake.batches), tc.callers)
			}
			// The drain goroutine removes the queue just after answering.
			left := -1
			for deadline := time.Now().Add(time.Second); left != 0 && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
				c.mu.Lock()
				left = len(c.queues)
				c.mu.Unlock()
			}
			if left != 0 {
				t.Errorf("%d bucket queues left a second after every take returned", left)
			}
		})
	}
}

func TestCoalescingErrorsAndCancel(t *testing.T) {
	t.Run("an error reaches every caller of the batch", func(t *testing.T) {
		boom := errors.New("database down")
		c := NewCoalescing(&slowBuckets{delay: time.Millisecond, err: boom, buckets: map[string]Bucket{}}, time.Second)
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				if _, err := c.Take(context.Background(), "k", Limit{RPS: 1, Burst: 1}); !errors.Is(err, boom) {
					t.Errorf("got %v, want %v", err, boom)
				}
			})
		}
		wg.Wait()
	})
	t.Run("a caller stops waiting when its context ends", func(t *testing.T) {
		c := NewCoalescing(&slowBuckets{delay: time.Second, buckets: map[string]Bucket{}}, 5*time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		start := time.Now()
		if _, err := c.Take(ctx, "k", Limit{RPS: 1, Burst: 1}); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got %v, want the deadline", err)
		}
		if waited := time.Since(start); waited > 500*time.Millisecond {
			t.Errorf("waited %v for a take of 1s", waited)
		}
	})
	t.Run("limits that differ get takes of their own", func(t *testing.T) {
		fake := &slowBuckets{buckets: map[string]Bucket{}}
		c := NewCoalescing(fake, time.Second)
		batch := []*waiter{
			{l: Limit{RPS: 1, Burst: 2}, done: make(chan result, 1)},
			{l: Limit{RPS: 1, Burst: 2}, done: make(chan result, 1)},
			{l: Limit{RPS: 1, Burst: 9}, done: make(chan result, 1)},
		}
		c.serve("k", batch)
		if !slices.Equal(fake.batches, []int{2, 1}) {
			t.Errorf("takes %v, want [2 1]", fake.batches)
		}
		// The first two empty the bucket; the third, under its own limit,
		// finds it empty (the fake's clock does not move).
		for i, w := range batch {
			if r := <-w.done; r.err != nil || r.d.Allowed != (i < 2) || r.d.Limit != w.l.Burst {
				t.Errorf("caller %d: %+v", i, r)
			}
		}
	})
}
