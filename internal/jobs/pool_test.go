package jobs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/fault"
	"github.com/assay-dev/assay/internal/memory"
)

// fakeRunner answers each grading with the next error of its script (nil
// once the script is done) and records everything.
type fakeRunner struct {
	mu        sync.Mutex
	script    map[string][]error
	graded    map[string]int
	failed    map[string]error
	callbacks map[string]int
	outcomes  map[string]int
	block     chan struct{} // if set, Grade waits for it or its context
}

func newFakeRunner() *fakeRunner {
	return &fakeRunner{script: map[string][]error{}, graded: map[string]int{}, failed: map[string]error{},
		callbacks: map[string]int{}, outcomes: map[string]int{}}
}

func (r *fakeRunner) Grade(ctx context.Context, id string, _ evaluation.Request) error {
	if r.block != nil {
		select {
		case <-r.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.graded[id]++
	if s := r.script[id]; len(s) > 0 {
		r.script[id] = s[1:]
		return s[0]
	}
	return nil
}

func (r *fakeRunner) Fail(_ context.Context, id string, cause error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed[id] = cause
	return nil
}

func (r *fakeRunner) FillRegrade(context.Context, string) error { return nil }

func (r *fakeRunner) Callback(_ context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.callbacks[id]++
	return nil
}

func (r *fakeRunner) Observe(kind, outcome string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.outcomes[kind+"/"+outcome]++
}

func (r *fakeRunner) snapshot() (graded map[string]int, failed map[string]error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	g, f := map[string]int{}, map[string]error{}
	for k, v := range r.graded {
		g[k] = v
	}
	for k, v := range r.failed {
		f[k] = v
	}
	return g, f
}

func job(n int) evaluation.Job {
	return evaluation.Job{Evaluation: evaluation.Evaluation{ID: fmt.Sprintf("00000000-0000-4000-8000-%012x", n),
		Status: evaluation.StatusQueued, CreatedAt: time.Now()}}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var unavailable = fault.New(fault.Unavailable, "the model is down")

func TestPoolRetries(t *testing.T) {
	tests := []struct {
		name       string
		script     []error
		wantGrades int
		wantFailed bool
	}{
		{"succeeds at once", nil, 1, false},
		{"retries an outage, then succeeds", []error{unavailable, unavailable}, 3, false},
		{"fails a bad request at once", []error{fault.New(fault.NoMatch, "no rubric")}, 1, true},
		{"fails after the last attempt", []error{unavailable, unavailable, unavailable, unavailable}, 3, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newFakeRunner()
			p := NewPool(memory.New(), Config{Workers: 2, GradeAttempts: 3, RetryBase: time.Millisecond})
			p.Start(r)
			defer p.Stop(t.Context())
			j := job(1)
			r.script[j.Evaluation.ID] = tc.script
			if err := p.Enqueue(t.Context(), nil, []evaluation.Job{j}); err != nil {
				t.Fatal(err)
			}
			eventually(t, "the queue to drain", func() bool { d, _ := p.Depth(t.Context()); return d == 0 })
			graded, failed := r.snapshot()
			if graded[j.Evaluation.ID] != tc.wantGrades {
				t.Errorf("graded %d times, want %d", graded[j.Evaluation.ID], tc.wantGrades)
			}
			if _, ok := failed[j.Evaluation.ID]; ok != tc.wantFailed {
				t.Errorf("failed = %v, want %v", ok, tc.wantFailed)
			}
		})
	}
}

func TestPoolDrainsManyOnce(t *testing.T) {
	r := newFakeRunner()
	store := memory.New()
	p := NewPool(store, Config{Workers: 4})
	p.Start(r)
	defer p.Stop(t.Context())
	var jobs []evaluation.Job
	for i := range 200 {
		jobs = append(jobs, job(i))
	}
	b := &evaluation.Batch{ID: "00000000-0000-4000-9000-000000000001", Kind: evaluation.KindBatch, Filled: true, Total: 200}
	for i := range jobs {
		jobs[i].Evaluation.BatchID = b.ID
	}
	if err := p.Enqueue(t.Context(), b, jobs); err != nil {
		t.Fatal(err)
	}
	eventually(t, "200 gradings", func() bool { d, _ := p.Depth(t.Context()); return d == 0 })
	graded, _ := r.snapshot()
	for _, j := range jobs {
		if graded[j.Evaluation.ID] != 1 {
			t.Fatalf("%s graded %d times, want 1", j.Evaluation.ID, graded[j.Evaluation.ID])
		}
	}
	if got, err := store.Batch(t.Context(), b.ID); err != nil || got.Counts[evaluation.StatusQueued] != 200 {
		t.Errorf("stored batch = %+v, %v; want its 200 rows", got, err)
	}
	// A conflicting enqueue stores nothing and queues nothing.
	if err := p.Enqueue(t.Context(), nil, jobs[:1]); fault.KindOf(err) != fault.Conflict {
		t.Errorf("enqueue of an existing id = %v, want a conflict", err)
	}
}

func TestPoolCallbacksOnce(t *testing.T) {
	r := newFakeRunner()
	p := NewPool(memory.New(), Config{Workers: 1})
	p.Start(r)
	defer p.Stop(t.Context())
	for range 3 {
		if err := p.EnqueueCallback(t.Context(), "e1"); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the callback", func() bool { r.mu.Lock(); defer r.mu.Unlock(); return r.callbacks["e1"] > 0 })
	time.Sleep(20 * time.Millisecond)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.callbacks["e1"] != 1 {
		t.Errorf("callback sent %d times, want 1", r.callbacks["e1"])
	}
}

func TestPoolStop(t *testing.T) {
	tests := []struct {
		name    string
		release bool // let the running job finish within the grace period
		wantErr bool
	}{
		{"running jobs finish", true, false},
		{"running jobs are cancelled after the grace period", false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newFakeRunner()
			r.block = make(chan struct{})
			p := NewPool(memory.New(), Config{Workers: 1})
			p.Start(r)
			if err := p.Enqueue(t.Context(), nil, []evaluation.Job{job(1), job(2)}); err != nil {
				t.Fatal(err)
			}
			eventually(t, "a running job", func() bool {
				d, _ := p.Depth(t.Context())
				p.mu.Lock()
				defer p.mu.Unlock()
				return d == 2 && len(p.tasks) == 1
			})
			ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
			defer cancel()
			stopped := make(chan error, 1)
			go func() { stopped <- p.Stop(ctx) }()
			// Release the running job only once Stop has dropped the queue.
			eventually(t, "Stop to begin", func() bool { p.mu.Lock(); defer p.mu.Unlock(); return p.stopped })
			if tc.release {
				close(r.block)
			}
			err := <-stopped
			if (err != nil) != tc.wantErr {
				t.Errorf("Stop = %v, want error %v", err, tc.wantErr)
			}
			graded, failed := r.snapshot()
			if tc.release && graded[job(1).Evaluation.ID] != 1 {
				t.Error("the running job did not finish")
			}
			if graded[job(2).Evaluation.ID] != 0 {
				t.Error("a job started after Stop")
			}
			if len(failed) != 0 {
				t.Errorf("a cancelled job failed its evaluation: %v", failed)
			}
			// After Stop, new work is not run.
			if err := p.Enqueue(t.Context(), nil, []evaluation.Job{job(3)}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		attempt  int
		min, max time.Duration
	}{
		{1, 800 * time.Millisecond, 1200 * time.Millisecond},
		{3, 3200 * time.Millisecond, 4800 * time.Millisecond},
		{40, 8 * time.Minute, 12 * time.Minute},
	}
	for _, tc := range tests {
		for range 20 {
			if d := backoff(time.Second, tc.attempt); d < tc.min || d > tc.max {
				t.Errorf("backoff(1s, %d) = %v, want %v to %v", tc.attempt, d, tc.min, tc.max)
			}
		}
	}
}

func TestBroker(t *testing.T) {
	b := NewBroker()
	a1, cancelA1 := b.Subscribe("a")
	a2, cancelA2 := b.Subscribe("a")
	other, cancelOther := b.Subscribe("b")
	defer cancelA2()
	defer cancelOther()
	b.Publish(evaluation.Event{EvaluationID: "a", Name: evaluation.EventQueued})
	b.Publish(evaluation.Event{}) // a resync reaches everyone
	for _, ch := range []<-chan evaluation.Event{a1, a2} {
		if ev := <-ch; ev.Name != evaluation.EventQueued {
			t.Errorf("got %+v, want the queued event", ev)
		}
		if ev := <-ch; ev.EvaluationID != "" {
			t.Errorf("got %+v, want the resync", ev)
		}
	}
	if ev := <-other; ev.EvaluationID != "" {
		t.Errorf("another evaluation's follower got %+v", ev)
	}
	cancelA1()
	cancelA1() // idempotent
	for range subscriberBuffer + 5 {
		b.Publish(evaluation.Event{EvaluationID: "a", Name: evaluation.EventGrading}) // never blocks
	}
	if err := b.Notify(t.Context(), evaluation.Event{EvaluationID: "b"}); err != nil {
		t.Fatal(err)
	}
	if len(a2) != subscriberBuffer || len(other) != 1 {
		t.Errorf("buffered %d and %d events, want %d and 1", len(a2), len(other), subscriberBuffer)
	}
}

func TestSettleGradeRetriesCancelledRuns(t *testing.T) {
	r := newFakeRunner()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := settleGrade(ctx, r, "e", errors.New("context canceled somewhere deep"), false)
	if err == nil || len(r.failed) != 0 {
		t.Errorf("a run cut short by shutdown: retry err = %v, failed = %v; want a retry and no failure", err, r.failed)
	}
}
