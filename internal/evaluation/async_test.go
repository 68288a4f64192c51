package evaluation_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/assay-dev/assay/internal/embed"
	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/fault"
	"github.com/assay-dev/assay/internal/grader"
	"github.com/assay-dev/assay/internal/memory"
	"github.com/assay-dev/assay/internal/rubric"
	"github.com/assay-dev/assay/rubrics"
)

const (
	asyncQuestion = "What is rate limiting and how do you implement it?"
	asyncAnswer   = "A token bucket per API key, kept in Redis, refilled at a steady rate; over the limit the API answers 429 with Retry-After."
)

// fakeQueue stores what it is given and runs nothing: tests call the
// Async's job methods themselves.
type fakeQueue struct {
	store     evaluation.Store
	mu        sync.Mutex
	jobs      []evaluation.Job
	callbacks []string
	depth     int
}

func (q *fakeQueue) Enqueue(ctx context.Context, b *evaluation.Batch, jobs []evaluation.Job) error {
	es := make([]evaluation.Evaluation, len(jobs))
	for i, j := range jobs {
		es[i] = j.Evaluation
	}
	if err := q.store.CreateQueued(ctx, b, es); err != nil {
		return err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.jobs = append(q.jobs, jobs...)
	return nil
}

func (q *fakeQueue) EnqueueRegrade(ctx context.Context, b evaluation.Batch) error {
	return q.store.CreateQueued(ctx, &b, nil)
}

func (q *fakeQueue) EnqueueCallback(_ context.Context, id string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.callbacks = append(q.callbacks, id)
	return nil
}

func (q *fakeQueue) Depth(context.Context) (int, error) { return q.depth, nil }

// recorder keeps the events published, in order.
type recorder struct {
	mu     sync.Mutex
	events []evaluation.Event
}

func (r *recorder) Notify(_ context.Context, ev evaluation.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
	return nil
}

func (r *recorder) names(id string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ev := range r.events {
		if ev.EvaluationID == id {
			out = append(out, ev.Name)
		}
	}
	return out
}

// allowAll accepts every callback and records what it sends.
type allowAll struct{ sent []string }

func (allowAll) Check(context.Context, string) error { return nil }
func (a *allowAll) Send(_ context.Context, url string, _ []byte) error {
	a.sent = append(a.sent, url)
	return nil
}

type asyncFixture struct {
	store  *memory.Store
	queue  *fakeQueue
	events *recorder
	async  *evaluation.Async
	svc    *evaluation.Service
}

func newAsyncFixture(t *testing.T, extra ...evaluation.Grader) *asyncFixture {
	t.Helper()
	bank, err := rubric.Load(rubrics.FS)
	if err != nil {
		t.Fatal(err)
	}
	store := memory.New()
	svc := evaluation.NewService(store, embed.NewLocalForBank(bank), append([]evaluation.Grader{grader.Heuristic{}}, extra...),
		evaluation.Config{MatchThreshold: 0.2, MaxAnswerRunes: 2000}, slog.New(slog.DiscardHandler))
	if _, err := svc.SyncRubrics(t.Context(), bank); err != nil {
		t.Fatal(err)
	}
	f := &asyncFixture{store: store, queue: &fakeQueue{store: store}, events: &recorder{}, svc: svc}
	f.async = evaluation.NewAsync(svc, f.queue, evaluation.AsyncConfig{QueueLimit: 10, Notifier: f.events, Callbacks: &allowAll{}})
	return f
}

func TestSubmitAndGrade(t *testing.T) {
	f := newAsyncFixture(t)
	e, err := f.async.Submit(t.Context(), evaluation.Submission{
		Request:     evaluation.Request{Question: asyncQuestion, Answer: "  " + asyncAnswer + "\r\n"},
		CallbackURL: "https://hooks.example.com/assay",
	})
	if err != nil {
		t.Fatal(err)
	}
	if e.Status != evaluation.StatusQueued || e.CallbackURL == "" || e.Criteria == nil {
		t.Fatalf("submitted evaluation = %+v, want queued with its callback and empty lists", e)
	}
	job := f.queue.jobs[0]
	for run := 1; run <= 2; run++ { // a job run twice stores one result
		if err := f.async.Grade(t.Context(), e.ID, job.Request); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
	}
	got, err := f.store.Evaluation(t.Context(), e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != evaluation.StatusCompleted || got.Rubric.ID != "api-rate-limiting" || len(got.Criteria) == 0 || !got.CreatedAt.Equal(e.CreatedAt) {
		t.Errorf("graded evaluation = %s %s %d criteria, created %v; want completed api-rate-limiting with criteria, created %v",
			got.Status, got.Rubric.ID, len(got.Criteria), got.CreatedAt, e.CreatedAt)
	}
	want := []string{evaluation.EventQueued, evaluation.EventRubricMatched, evaluation.EventGrading, evaluation.EventCompleted}
	if names := f.events.names(e.ID); !slices.Equal(names, want) {
		t.Errorf("events = %q, want %q", names, want)
	}
	// Both runs make sure of the callback; the queue delivers it once.
	if want := []string{e.ID, e.ID}; !slices.Equal(f.queue.callbacks, want) {
		t.Errorf("callbacks enqueued = %q, want %q", f.queue.callbacks, want)
	}
}

func TestSubmitRefuses(t *testing.T) {
	tests := []struct {
		name    string
		depth   int
		subs    []evaluation.Submission
		kind    fault.Kind
		pointer string
	}{
		{"empty answer", 0, []evaluation.Submission{{Request: evaluation.Request{Answer: " "}}}, fault.Invalid, "/answer"},
		{"unknown grader", 0, []evaluation.Submission{{Request: evaluation.Request{Answer: "a", Grader: "nope"}}}, fault.Invalid, "/grader"},
		{"full queue", 10, []evaluation.Submission{{Request: evaluation.Request{Answer: "a"}}}, fault.Unavailable, ""},
		{"batch item", 0, []evaluation.Submission{{Request: evaluation.Request{Answer: "a"}}, {Request: evaluation.Request{Answer: "a", Samples: 99}}},
			fault.Invalid, "/items/1/samples"},
		{"empty batch", 0, []evaluation.Submission{}, fault.Invalid, "/items"},
		{"batch over the queue limit", 9, []evaluation.Submission{{Request: evaluation.Request{Answer: "a"}}, {Request: evaluation.Request{Answer: "b"}}},
			fault.Unavailable, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newAsyncFixture(t)
			f.queue.depth = tc.depth
			var err error
			if len(tc.subs) == 1 {
				_, err = f.async.Submit(t.Context(), tc.subs[0])
			} else {
				_, _, err = f.async.SubmitBatch(t.Context(), tc.subs, "")
			}
			fe, ok := fault.As(err)
			if !ok || fe.Kind != tc.kind {
				t.Fatalf("error = %v, want a %v fault", err, tc.kind)
			}
			if tc.pointer != "" && (len(fe.Fields) == 0 || fe.Fields[0].Pointer != tc.pointer) {
				t.Errorf("fields = %+v, want pointer %s", fe.Fields, tc.pointer)
			}
			if tc.kind == fault.Unavailable && fe.RetryAfter <= 0 {
				t.Error("a full queue gives no Retry-After")
			}
			if len(f.queue.jobs) != 0 {
				t.Errorf("%d jobs queued, want none", len(f.queue.jobs))
			}
		})
	}
}

// failing is a grader whose provider is down.
type failing struct{}

func (failing) Kind() string { return "down" }
func (failing) Grade(context.Context, evaluation.GradeInput) (evaluation.Grading, error) {
	return evaluation.Grading{}, fault.New(fault.Unavailable, "the model is down")
}

func TestGradeFailures(t *testing.T) {
	tests := []struct {
		name      string
		req       evaluation.Request
		retryable bool
	}{
		{"provider down", evaluation.Request{Question: asyncQuestion, Answer: asyncAnswer, Grader: "down"}, true},
		{"no matching rubric", evaluation.Request{Question: "What is the capital of France?", Answer: "Paris, on the Seine."}, false},
		{"unknown rubric", evaluation.Request{RubricID: "nope", Answer: asyncAnswer}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newAsyncFixture(t, failing{})
			e, err := f.async.Submit(t.Context(), evaluation.Submission{Request: tc.req})
			if err != nil {
				t.Fatal(err)
			}
			gerr := f.async.Grade(t.Context(), e.ID, f.queue.jobs[0].Request)
			if gerr == nil || evaluation.Retryable(gerr) != tc.retryable {
				t.Fatalf("Grade = %v, want an error with Retryable %v", gerr, tc.retryable)
			}
			if err := f.async.Fail(t.Context(), e.ID, gerr); err != nil {
				t.Fatal(err)
			}
			got, _ := f.store.Evaluation(t.Context(), e.ID)
			if got.Status != evaluation.StatusFailed || got.Error == nil || got.Error.Detail == "" {
				t.Errorf("after Fail: status %s, error %+v; want failed with a problem", got.Status, got.Error)
			}
			if names := f.events.names(e.ID); names[len(names)-1] != evaluation.EventFailed {
				t.Errorf("events = %q, want failed last", names)
			}
			// A late run of the same job leaves the failure alone.
			if err := f.async.Grade(t.Context(), e.ID, f.queue.jobs[0].Request); err != nil {
				t.Errorf("Grade after Fail = %v, want nil", err)
			}
			if err := f.async.Fail(t.Context(), "01a21b1f-4621-723f-8079-98112c41852c", errors.New("x")); err != nil {
				t.Errorf("Fail of a missing evaluation = %v, want nil", err)
			}
		})
	}
}

func TestRegrade(t *testing.T) {
	f := newAsyncFixture(t)
	old, err := f.svc.Evaluate(t.Context(), evaluation.Request{Question: asyncQuestion, Answer: asyncAnswer})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Millisecond) // the regrade takes what was made before it
	b, err := f.async.Regrade(t.Context(), "api-rate-limiting", "")
	if err != nil {
		t.Fatal(err)
	}
	for run := 1; run <= 2; run++ { // idempotent: the second run queues nothing
		if err := f.async.FillRegrade(t.Context(), b.ID); err != nil {
			t.Fatal(err)
		}
	}
	if len(f.queue.jobs) != 1 {
		t.Fatalf("%d regrades queued, want 1", len(f.queue.jobs))
	}
	j := f.queue.jobs[0]
	if err := f.async.Grade(t.Context(), j.Evaluation.ID, j.Request); err != nil {
		t.Fatal(err)
	}
	rep, err := f.async.RegradeReport(t.Context(), b.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Status != evaluation.StatusCompleted || len(rep.Items) != 1 || rep.Items[0].RegradeOf != old.ID ||
		rep.Items[0].Change == nil || *rep.Items[0].Change != 0 || rep.Changes.Count != 1 || rep.Changes.Unchanged != 1 {
		t.Errorf("report = %+v, want one completed, unchanged regrade of %s", rep, old.ID)
	}
	if _, err := f.async.RegradeReport(t.Context(), b.ID, "someone-else"); fault.KindOf(err) != fault.NotFound {
		t.Errorf("another key's regrade: err = %v, want not found", err)
	}
}

func TestSummarize(t *testing.T) {
	tests := []struct {
		name    string
		changes []float64
		mean    float64
		median  float64
		buckets map[int]int // histogram index -> count
	}{
		{"none", nil, 0, 0, map[int]int{}},
		{"one unchanged", []float64{0}, 0, 0, map[int]int{4: 1}},
		{"odd", []float64{-25, 3, 12.5}, -3.17, 3, map[int]int{0: 1, 5: 1, 7: 1}},
		{"even, on edges", []float64{-20, -1, 1, 20}, 0, 0, map[int]int{1: 1, 4: 1, 5: 1, 8: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := evaluation.Summarize(tc.changes)
			if st.Count != len(tc.changes) || st.Mean != tc.mean || st.Median != tc.median {
				t.Errorf("count %d mean %v median %v, want %d %v %v", st.Count, st.Mean, st.Median, len(tc.changes), tc.mean, tc.median)
			}
			for i, b := range st.Histogram {
				if b.Count != tc.buckets[i] {
					t.Errorf("bucket %d (%v to %v) = %d, want %d", i, b.From, b.To, b.Count, tc.buckets[i])
				}
			}
		})
	}
}
