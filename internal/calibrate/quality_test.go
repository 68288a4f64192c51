package calibrate

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/assay-dev/assay/internal/embed"
	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/grader"
	"github.com/assay-dev/assay/internal/memory"
	"github.com/assay-dev/assay/internal/rubric"
	"github.com/assay-dev/assay/rubrics"
)

// baseline is the figure the quality gate holds the heuristic grader to,
// recorded in testdata/baseline.json from
// `go run ./cmd/api calibrate --data ../shared/datasets/mohler/answers.jsonl`.
type baseline struct {
	Data      string  `json:"data"`
	Grader    string  `json:"grader"`
	Model     string  `json:"model"`
	N         int     `json:"n"`
	Pearson   float64 `json:"pearson"`
	Tolerance float64 `json:"tolerance"`
}

// mohlerPath returns where the public Mohler set is expected: beside the
// repository, at ../shared/datasets/mohler/answers.jsonl from its root.
func mohlerPath(t *testing.T, rel string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, filepath.FromSlash(rel))
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// TestQualityGate grades the Mohler set with the heuristic grader through
// the evaluation service and fails when Pearson's r falls more than the
// tolerance below the recorded baseline. Without the data it skips, except
// in CI (CI=true), where the data must be there.
func TestQualityGate(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "baseline.json"))
	if err != nil {
		t.Fatal(err)
	}
	var base baseline
	if err := json.Unmarshal(b, &base); err != nil {
		t.Fatalf("testdata/baseline.json: %v", err)
	}
	path := mohlerPath(t, base.Data)
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but the calibration data is missing: %v", err)
		}
		t.Skipf("no calibration data at %s", path)
	}
	items, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	svc := heuristicService(t)
	rep, err := Run(context.Background(), svc, items, Options{Grader: base.Grader})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("n %d pearson %s spearman %s qwk %s mae %.3f rmse %.3f bias %+.3f (%.1fs)",
		rep.N, show(rep.Pearson), show(rep.Spearman), show(rep.QWK), rep.MAE, rep.RMSE, rep.Bias, rep.Seconds)
	if rep.N != base.N || rep.Failed != 0 {
		t.Errorf("graded %d answers with %d failures, want %d and none", rep.N, rep.Failed, base.N)
	}
	if rep.Pearson == nil || *rep.Pearson < base.Pearson-base.Tolerance {
		t.Errorf("Pearson r %s is more than %.2f below the baseline %.4f (testdata/baseline.json)", show(rep.Pearson), base.Tolerance, base.Pearson)
	} else if *rep.Pearson > base.Pearson+base.Tolerance {
		t.Logf("Pearson r %.4f is well above the baseline %.4f: record it in testdata/baseline.json and docs/quality.md", *rep.Pearson, base.Pearson)
	}
	if len(rep.Models) != 1 || rep.Models[0] != base.Model {
		t.Logf("models %v; the baseline was recorded with %s", rep.Models, base.Model)
	}
}

// heuristicService wires the service by hand as `api calibrate` does
// without an LLM: in-memory store, local embedder, heuristic grader.
func heuristicService(t *testing.T) *evaluation.Service {
	t.Helper()
	seed, err := rubric.Load(rubrics.FS)
	if err != nil {
		t.Fatal(err)
	}
	return evaluation.NewService(memory.New(), embed.NewLocalForBank(seed), []evaluation.Grader{grader.Heuristic{}},
		evaluation.Config{MaxAnswerRunes: 10000}, slog.New(slog.NewTextHandler(io.Discard, nil)))
}
