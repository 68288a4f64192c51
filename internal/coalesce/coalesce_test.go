package coalesce_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assay-dev/assay/internal/coalesce"
)

// gate is a RunFunc that records each batch and holds the first one until
// released, so that the test can queue calls behind it.
type gate struct {
	mu      sync.Mutex
	batches [][]int
	started chan struct{} // closed when the first batch starts
	release chan struct{}
	fail    error
}

func newGate() *gate {
	return &gate{started: make(chan struct{}), release: make(chan struct{})}
}

func (g *gate) run(_ context.Context, in []int) ([]string, error) {
	g.mu.Lock()
	first := len(g.batches) == 0
	g.batches = append(g.batches, slices.Clone(in))
	g.mu.Unlock()
	if first {
		close(g.started)
		<-g.release
	}
	if g.fail != nil {
		return nil, g.fail
	}
	out := make([]string, len(in))
	for i, x := range in {
		out[i] = fmt.Sprint("r", x)
	}
	return out, nil
}

func (g *gate) sizes() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	var n []int
	for _, b := range g.batches {
		n = append(n, len(b))
	}
	return n
}

// waitQueued waits until n calls wait behind the running batch.
func waitQueued(t *testing.T, b *coalesce.Batcher[int, string], n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for b.Queued() < n {
		if time.Now().After(deadline) {
			t.Fatalf("queued = %d after 5s, want %d", b.Queued(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestBatcher(t *testing.T) {
	tests := []struct {
		name      string
		size      int
		waiting   int   // calls made while the first runs
		wantSizes []int // batch sizes, in order
	}{
		{"one caller runs alone", 8, 0, []int{1}},
		{"waiting calls run as one batch", 8, 5, []int{1, 5}},
		{"batches hold at most size calls", 2, 5, []int{1, 2, 2, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newGate()
			b := coalesce.New(tc.size, 5*time.Second, g.run)
			results := make([]string, tc.waiting+1)
			errs := make([]error, tc.waiting+1)
			var wg sync.WaitGroup
			wg.Go(func() { results[0], errs[0] = b.Do(t.Context(), 0) })
			<-g.started
			for i := 1; i <= tc.waiting; i++ {
				wg.Go(func() { results[i], errs[i] = b.Do(t.Context(), i) })
			}
			waitQueued(t, b, tc.waiting)
			close(g.release)
			wg.Wait()
			for i, r := range results {
				if errs[i] != nil || r != fmt.Sprint("r", i) {
					t.Errorf("Do(%d) = %q, %v; want %q, nil", i, r, errs[i], fmt.Sprint("r", i))
				}
			}
			if got := g.sizes(); !slices.Equal(got, tc.wantSizes) {
				t.Errorf("batch sizes = %v, want %v", got, tc.wantSizes)
			}
			// Idle again: the next call runs alone.
			if _, err := b.Do(t.Context(), 99); err != nil {
				t.Fatal(err)
			}
			if got := g.sizes(); got[len(got)-1] != 1 {
				t.Errorf("batch after idle had %d calls, want 1", got[len(got)-1])
			}
		})
	}
}

// TestBatcherStartsAfterCall checks the property reads rely on: a call is
// never served by a batch that had started before the call was made.
func TestBatcherStartsAfterCall(t *testing.T) {
	g := newGate()
	b := coalesce.New(64, 5*time.Second, g.run)
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = b.Do(t.Context(), 0) })
	<-g.started
	wg.Go(func() { _, _ = b.Do(t.Context(), 1) })
	waitQueued(t, b, 1)
	close(g.release)
	wg.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.batches) != 2 || !slices.Equal(g.batches[0], []int{0}) || !slices.Equal(g.batches[1], []int{1}) {
		t.Errorf("batches = %v, want [[0] [1]]", g.batches)
	}
}

func TestBatcherFailures(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name string
		run  coalesce.RunFunc[int, string]
		want string
	}{
		{"error", func(context.Context, []int) ([]string, error) { return nil, boom }, "boom"},
		{"short result", func(context.Context, []int) ([]string, error) { return nil, nil }, "returned 0 results"},
		{"panic", func(context.Context, []int) ([]string, error) { panic("bad input") }, "panicked: bad input"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			b := coalesce.New(8, time.Second, func(ctx context.Context, in []int) ([]string, error) {
				calls++
				if calls == 1 {
					return tc.run(ctx, in)
				}
				return []string{"ok"}, nil
			})
			_, err := b.Do(t.Context(), 1)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Do = %v, want an error containing %q", err, tc.want)
			}
			// The batcher is still usable afterwards.
			if got, err := b.Do(t.Context(), 2); err != nil || got != "ok" {
				t.Errorf("Do after failure = %q, %v; want ok", got, err)
			}
		})
	}
}

// TestBatcherErrorFailsBatch checks that an error of a coalesced batch
// reaches every caller in it.
func TestBatcherErrorFailsBatch(t *testing.T) {
	g := newGate()
	g.fail = errors.New("database down")
	b := coalesce.New(8, time.Second, g.run)
	errs := make([]error, 4)
	var wg sync.WaitGroup
	wg.Go(func() { _, errs[0] = b.Do(t.Context(), 0) })
	<-g.started
	for i := 1; i < 4; i++ {
		wg.Go(func() { _, errs[i] = b.Do(t.Context(), i) })
	}
	waitQueued(t, b, 3)
	close(g.release)
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, g.fail) {
			t.Errorf("call %d: err = %v, want %v", i, err, g.fail)
		}
	}
}

// TestBatcherCancelledCallLeftOut checks that a caller who gave up before
// its batch started is not run: its write must not happen after it was
// told it failed.
func TestBatcherCancelledCallLeftOut(t *testing.T) {
	g := newGate()
	b := coalesce.New(8, time.Second, g.run)
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = b.Do(t.Context(), 0) })
	<-g.started
	ctx, cancel := context.WithCancel(t.Context())
	var cancelledErr error
	wg.Go(func() { _, cancelledErr = b.Do(ctx, 1) })
	wg.Go(func() { _, _ = b.Do(t.Context(), 2) })
	waitQueued(t, b, 2)
	cancel() // done before the batch starts: serve sees ctx.Err
	close(g.release)
	wg.Wait()
	if !errors.Is(cancelledErr, context.Canceled) {
		t.Errorf("cancelled call: err = %v, want context.Canceled", cancelledErr)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.batches) != 2 || !slices.Equal(g.batches[1], []int{2}) {
		t.Errorf("batches = %v, want [[0] [2]]", g.batches)
	}
}

// TestBatcherWaitsForStartedCall: a caller whose context ends after its
// batch started gets the batch's result, not its context's error: the
// write it asked for happened.
func TestBatcherWaitsForStartedCall(t *testing.T) {
	g := newGate()
	inBatch := make(chan struct{})
	finish := make(chan struct{})
	b := coalesce.New(8, 5*time.Second, func(ctx context.Context, in []int) ([]string, error) {
		if in[0] == 1 {
			close(inBatch)
			<-finish
		}
		return g.run(ctx, in)
	})
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = b.Do(t.Context(), 0) })
	<-g.started
	ctx, cancel := context.WithCancel(t.Context())
	var got string
	var err error
	wg.Go(func() { got, err = b.Do(ctx, 1) })
	waitQueued(t, b, 1)
	close(g.release)
	<-inBatch // call 1's batch has started
	cancel()
	close(finish)
	wg.Wait()
	if err != nil || got != "r1" {
		t.Errorf("Do = %q, %v; want r1, nil (its batch ran)", got, err)
	}
}

// TestBatcherBoundsACallAlone: a call that runs alone gets the batcher's
// timeout too, since every later call waits for it.
func TestBatcherBoundsACallAlone(t *testing.T) {
	b := coalesce.New(8, 50*time.Millisecond, func(ctx context.Context, in []int) ([]string, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	start := time.Now()
	_, err := b.Do(t.Context(), 1) // t.Context has no deadline
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Do = %v, want the batcher's deadline", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Do took %v with a 50ms timeout", d)
	}
}
