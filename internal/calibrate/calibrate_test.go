package calibrate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/assay-dev/assay/internal/evaluation"
)

// fakeEvaluator scores an answer with the number it starts with ("75 ..."
// scores 75) and fails on answers starting with "fail".
type fakeEvaluator struct {
	mu    sync.Mutex
	calls []string
	// after, when set, runs after each successful call with the count.
	after func(n int)
}

func (f *fakeEvaluator) Evaluate(ctx context.Context, req evaluation.Request) (evaluation.Evaluation, error) {
	if err := ctx.Err(); err != nil {
		return evaluation.Evaluation{}, err
	}
	if req.Inline == nil || req.Inline.ReferenceAnswer == "" || req.Grader != "fake" {
		return evaluation.Evaluation{}, fmt.Errorf("bad request %+v", req)
	}
	if strings.HasPrefix(req.Answer, "fail") {
		return evaluation.Evaluation{}, errors.New("cannot grade this")
	}
	var overall float64
	fmt.Sscanf(req.Answer, "%g", &overall)
	f.mu.Lock()
	f.calls = append(f.calls, req.Answer)
	n := len(f.calls)
	f.mu.Unlock()
	if f.after != nil {
		f.after(n)
	}
	return evaluation.Evaluation{Score: evaluation.Score{Overall: overall}, Grader: evaluation.GraderInfo{Kind: "fake", Model: "fake-v1"}}, nil
}

func items(t *testing.T, lines ...string) []Item {
	t.Helper()
	its, err := ReadItems(strings.NewReader(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	return its
}

func line(q, answer string, score, max float64) string {
	return fmt.Sprintf(`{"question": %q, "reference_answer": "ref of %s", "answer": %q, "score": %g, "score_max": %g}`, q, q, answer, score, max)
}

func TestReadItems(t *testing.T) {
	its, err := ReadItems(strings.NewReader(`{"question_id": 7.2, "question": "q", "reference_answer": "r", "answer": "a", "score": 4.5, "score_max": 5, "extra": 1}

{"question_id": "x", "question": "q2", "reference_answer": "r2", "answer": "", "score": 0, "score_max": 10}
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(its) != 2 || its[0].QuestionID != "7.2" || its[0].Line != 1 || its[1].Line != 3 || its[1].ScoreMax != 10 {
		t.Errorf("items %+v", its)
	}
	for _, tc := range []struct{ in, want string }{
		{`{"question": "q"`, "line 1: unexpected end"},
		{`{"question": "q", "answer": "a", "score": 1, "score_max": 5}`, "line 1: missing reference_answer"},
		{`{"answer": "a", "score": 1}`, "line 1: missing question, reference_answer, score_max"},
		{"\n" + `{"question": "q", "reference_answer": "r", "answer": "a", "score": 6, "score_max": 5}`, "line 2: score must be from 0 to score_max"},
		{`{"question": "q", "reference_answer": "r", "answer": "a", "score": 0, "score_max": 0}`, "line 1: score_max must be greater than 0"},
	} {
		if _, err := ReadItems(strings.NewReader(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ReadItems(%s) = %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestRunReport(t *testing.T) {
	its := items(t,
		line("q1", "100 all", 5, 5),   // Assay 5
		line("q1", "60 most", 4, 5),   // Assay 3
		line("q2", "20 little", 1, 5), // Assay 1
		line("q2", "0 nothing", 0, 5), // Assay 0
		line("q3", "50 half", 10, 10), // Assay 5 on a 0-10 scale
	)
	rep, err := Run(context.Background(), &fakeEvaluator{}, its, Options{Grader: "fake", Concurrency: 3})
	if err != nil {
		t.Fatal(err)
	}
	// Assay on the human scale: 5 3 1 0 5; human: 5 4 1 0 10.
	// Errors 0 -1 0 0 -5: MAE 6/5 = 1.2, RMSE √(26/5) = 2.2804, bias -1.2.
	if rep.N != 5 || rep.MAE != 1.2 || rep.RMSE != 2.2804 || rep.Bias != -1.2 {
		t.Errorf("n %d mae %v rmse %v bias %v, want 5, 1.2, 2.2804, -1.2", rep.N, rep.MAE, rep.RMSE, rep.Bias)
	}
	// Ranks: Assay 4.5 3 2 1 4.5, human 4 3 2 1 5. Means 3; deviations
	// 1.5 0 -1 -2 1.5 and 1 0 -1 -2 2: Σ = 1.5+0+1+4+3 = 9.5, Σdx² = 9.5,
	// Σdy² = 10: ρ = 9.5/√95 = 0.9747.
	if rep.Spearman == nil || *rep.Spearman != 0.9747 {
		t.Errorf("spearman %v, want 0.9747", show(rep.Spearman))
	}
	if rep.Pearson == nil || rep.QWK == nil || rep.Fit == nil {
		t.Errorf("pearson %v qwk %v fit %v: want all defined", show(rep.Pearson), show(rep.QWK), rep.Fit)
	}
	if len(rep.Models) != 1 || rep.Models[0] != "fake-v1" || rep.Failed != 0 || rep.Resumed != 0 {
		t.Errorf("models %v failed %d resumed %d", rep.Models, rep.Failed, rep.Resumed)
	}
	// The 0-10 line makes 21 half-point categories, 0 to 10.
	if n := len(rep.Confusion.Labels); n != 21 || rep.Confusion.Counts[20][10] != 1 {
		t.Errorf("confusion labels %d, counts %v", n, rep.Confusion.Counts)
	}
	// Mean absolute error per question: q3 5, q1 0.5, q2 0.
	var order []string
	for _, q := range rep.WorstQuestions {
		order = append(order, fmt.Sprintf("%s %.1f", q.Question, q.MAE))
	}
	if got := strings.Join(order, ", "); got != "q3 5.0, q1 0.5, q2 0.0" {
		t.Errorf("worst questions %s", got)
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text, "data.jsonl"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Pearson r", "QWK", "Confusion matrix", "Worst questions", "q3"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
}

func manyItems(t *testing.T, n int) []Item {
	var lines []string
	for i := range n {
		lines = append(lines, line(fmt.Sprintf("q%d", i%3), fmt.Sprintf("%d answer %d", (i*37)%101, i), float64(i%6), 5))
	}
	return items(t, lines...)
}

func TestRunResumesAfterInterruption(t *testing.T) {
	its := manyItems(t, 12)
	state := filepath.Join(t.TempDir(), "data.jsonl.state")
	full, err := Run(context.Background(), &fakeEvaluator{}, its, Options{Grader: "fake"})
	if err != nil {
		t.Fatal(err)
	}

	// The first run is interrupted after 5 answers.
	ctx, cancel := context.WithCancel(context.Background())
	first := &fakeEvaluator{after: func(n int) {
		if n == 5 {
			cancel()
		}
	}}
	_, err = Run(ctx, first, its, Options{Grader: "fake", Concurrency: 1, StatePath: state})
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "resume") {
		t.Fatalf("interrupted run: %v, want context.Canceled and a hint to resume", err)
	}
	saved, err := loadState(state)
	if err != nil || len(saved) != 5 {
		t.Fatalf("state holds %d results (%v), want 5", len(saved), err)
	}

	// The second run grades only the other 7 and reports on all 12.
	second := &fakeEvaluator{}
	var progress bytes.Buffer
	rep, err := Run(context.Background(), second, its, Options{Grader: "fake", Concurrency: 4, StatePath: state, Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	if len(second.calls) != 7 || rep.Resumed != 5 || rep.N != 12 {
		t.Errorf("second run: %d calls, resumed %d, n %d; want 7, 5, 12", len(second.calls), rep.Resumed, rep.N)
	}
	for _, a := range first.calls {
		for _, b := range second.calls {
			if a == b {
				t.Errorf("%q graded twice", a)
			}
		}
	}
	if !strings.Contains(progress.String(), "resuming: 5 answers") || !strings.Contains(progress.String(), "7/7 100%") {
		t.Errorf("progress output %q", progress.String())
	}
	if *rep.Pearson != *full.Pearson || rep.RMSE != full.RMSE || rep.QWK == nil {
		t.Errorf("resumed report differs: pearson %v vs %v, rmse %v vs %v", *rep.Pearson, *full.Pearson, rep.RMSE, full.RMSE)
	}

	// A third run grades nothing.
	third := &fakeEvaluator{}
	if rep, err = Run(context.Background(), third, its, Options{Grader: "fake", StatePath: state}); err != nil || len(third.calls) != 0 || rep.Resumed != 12 {
		t.Errorf("third run: %d calls, resumed %d, err %v; want 0, 12, nil", len(third.calls), rep.Resumed, err)
	}
	// Another grader does not reuse the results.
	if rep, err := Run(context.Background(), &fakeEvaluator{}, its[:1], Options{Grader: "other", StatePath: state}); err != nil || rep.Failed != 1 {
		t.Errorf("another grader: failed %d, err %v; want the fake's refusal, not the stored result", rep.Failed, err)
	}
}

func TestRunSurvivesATornStateLine(t *testing.T) {
	its := manyItems(t, 4)
	state := filepath.Join(t.TempDir(), "state")
	if _, err := Run(context.Background(), &fakeEvaluator{}, its[:2], Options{Grader: "fake", StatePath: state}); err != nil {
		t.Fatal(err)
	}
	// A crash cut the last write short.
	f, _ := os.OpenFile(state, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"key": "abc", "li`)
	f.Close()
	ev := &fakeEvaluator{}
	rep, err := Run(context.Background(), ev, its, Options{Grader: "fake", StatePath: state})
	if err != nil || len(ev.calls) != 2 || rep.N != 4 {
		t.Fatalf("%d calls, n %d, err %v; want 2, 4, nil", len(ev.calls), rep.N, err)
	}
	saved, _ := loadState(state)
	if len(saved) != 4 {
		t.Errorf("state holds %d results, want 4: the torn line must not swallow the next one", len(saved))
	}
}

func TestRunFailuresAreRetried(t *testing.T) {
	its := items(t, line("q", "80 good", 4, 5), line("q", "fail me", 1, 5), line("q", "20 poor", 1, 5))
	state := filepath.Join(t.TempDir(), "state")
	rep, err := Run(context.Background(), &fakeEvaluator{}, its, Options{Grader: "fake", StatePath: state})
	if err != nil {
		t.Fatal(err)
	}
	if rep.N != 2 || rep.Failed != 1 || rep.Failures[0].Line != 2 || !strings.Contains(rep.Failures[0].Error, "cannot grade") {
		t.Errorf("n %d failed %d failures %+v", rep.N, rep.Failed, rep.Failures)
	}
	ev := &fakeEvaluator{}
	if rep, _ = Run(context.Background(), ev, its, Options{Grader: "fake", StatePath: state}); rep.Failed != 1 || rep.Resumed != 2 {
		t.Errorf("rerun: failed %d resumed %d, want the failure retried and the rest resumed", rep.Failed, rep.Resumed)
	}
}

func TestRunGivesUpWhenNothingWorks(t *testing.T) {
	var lines []string
	for i := range 30 {
		lines = append(lines, line("q", fmt.Sprintf("fail %d", i), 1, 5))
	}
	_, err := Run(context.Background(), &fakeEvaluator{}, items(t, lines...), Options{Grader: "fake", Concurrency: 1})
	if err == nil || !strings.Contains(err.Error(), "giving up after 10 failures") {
		t.Errorf("err %v, want giving up", err)
	}
}

func TestRunGradesDuplicatesOnce(t *testing.T) {
	ev := &fakeEvaluator{}
	rep, err := Run(context.Background(), ev, items(t, line("q", "40 same", 2, 5), line("q", "40 same", 3, 5)), Options{Grader: "fake"})
	if err != nil || len(ev.calls) != 1 || rep.N != 2 {
		t.Errorf("%d calls, n %d, err %v; want 1, 2, nil", len(ev.calls), rep.N, err)
	}
}
