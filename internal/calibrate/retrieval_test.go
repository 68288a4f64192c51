package calibrate

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/rubric"
)

// fakeSearcher returns one fixed match per question.
type fakeSearcher map[string]evaluation.Match

func (f fakeSearcher) Search(_ context.Context, q string, _ int) ([]evaluation.Match, error) {
	if m, ok := f[q]; ok {
		return []evaluation.Match{m}, nil
	}
	return nil, nil
}

func match(id string, sim float64) evaluation.Match {
	return evaluation.Match{Rubric: rubric.Rubric{ID: id}, Similarity: sim}
}

func TestEvalRetrieval(t *testing.T) {
	s := fakeSearcher{
		"right":         match("a", 0.5),
		"right but low": match("a", 0.1),
		"wrong":         match("b", 0.6),
		"off quiet":     match("a", 0.19),
		"off loud":      match("b", 0.2),
	}
	cases := []RetrievalCase{
		{Question: "right", RubricID: "a"}, {Question: "right but low", RubricID: "a"}, {Question: "wrong", RubricID: "a"},
		{Question: "nothing found", RubricID: "a"},
		{Question: "off quiet"}, {Question: "off loud"}, {Question: "off empty"},
	}
	rep, err := EvalRetrieval(context.Background(), s, cases, 0.2)
	if err != nil {
		t.Fatal(err)
	}
	// 4 on topic: 2 retrieve a first (top-1 2/4 = 0.5), 1 of them above the
	// threshold (1/4 = 0.25). 3 off topic: "off loud" reaches 0.2 (1/3).
	if rep.OnTopic != 4 || rep.Top1 != 2 || *rep.Top1Accuracy != 0.5 || rep.Matched != 1 || *rep.MatchedAccuracy != 0.25 {
		t.Errorf("on topic %d top1 %d (%v) matched %d (%v)", rep.OnTopic, rep.Top1, *rep.Top1Accuracy, rep.Matched, *rep.MatchedAccuracy)
	}
	if rep.OffTopic != 3 || rep.FalseMatches != 1 || *rep.FalseMatchRate != 0.3333 || rep.False[0].Question != "off loud" {
		t.Errorf("off topic %d false %d (%v) %+v", rep.OffTopic, rep.FalseMatches, *rep.FalseMatchRate, rep.False)
	}
	if len(rep.Misses) != 3 {
		t.Errorf("misses %+v, want 3", rep.Misses)
	}
	var b strings.Builder
	rep.WriteText(&b)
	if !strings.Contains(b.String(), "top-1 accuracy        50.0% (2/4") || !strings.Contains(b.String(), "below the threshold") {
		t.Errorf("text report:\n%s", b.String())
	}
}

func TestExpandPathsAndRead(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a := write("a.jsonl", `{"question": "q1", "rubric_id": "x"}`+"\n\n"+`{"question": "q2", "rubric_id": ""}`+"\n")
	b := write("b.jsonl", `{"question": "q3", "rubric_id": "y"}`)
	write("notes.txt", "not data")
	files, err := ExpandPaths([]string{dir, filepath.Join(dir, "*.jsonl"), a})
	if err != nil || !slices.Equal(files, []string{a, b}) {
		t.Fatalf("ExpandPaths = %v, %v; want both files once", files, err)
	}
	cases, err := ReadRetrievalCases(files)
	if err != nil || len(cases) != 3 || cases[1].RubricID != "" || cases[1].Source != a+":3" {
		t.Errorf("cases %+v, err %v", cases, err)
	}
	if _, err := ExpandPaths([]string{filepath.Join(dir, "*.none")}); err == nil {
		t.Error("a glob that matches nothing: want an error")
	}
	bad := write("bad.jsonl", `{"question": ""}`)
	if _, err := ReadRetrievalCases([]string{bad}); err == nil || !strings.Contains(err.Error(), "bad.jsonl:1") {
		t.Errorf("empty question: err %v", err)
	}
}
