package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// copySample puts the hand-made calibration sample in a temporary
// directory, where the command may write its state file.
func copySample(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../testdata/calibration/sample.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "sample.jsonl")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

type calibrationJSON struct {
	State    string   `json:"state"`
	N        int      `json:"n"`
	Resumed  int      `json:"resumed"`
	Failed   int      `json:"failed"`
	Pearson  *float64 `json:"pearson"`
	Spearman *float64 `json:"spearman"`
	QWK      *float64 `json:"qwk"`
	MAE      *float64 `json:"mae"`
	RMSE     *float64 `json:"rmse"`
	Bias     *float64 `json:"bias"`
	Models   []string `json:"models"`
}

// cacheEnv is an environment whose cache directory, where state files go
// by default, is a fresh temporary one.
func cacheEnv(t *testing.T) func(string) string {
	return env(map[string]string{"XDG_CACHE_HOME": t.TempDir()})
}

func calibrateJSON(t *testing.T, getenv func(string) string, args ...string) calibrationJSON {
	t.Helper()
	var out bytes.Buffer
	if err := run(context.Background(), append([]string{"calibrate", "--json", "--quiet"}, args...), getenv, &out); err != nil {
		t.Fatalf("calibrate %v: %v\n%s", args, err, out.String())
	}
	var rep calibrationJSON
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("output is not one JSON object: %v\n%s", err, out.String())
	}
	return rep
}

func TestCalibrateCommand(t *testing.T) {
	data := copySample(t)
	cache := cacheEnv(t)
	rep := calibrateJSON(t, cache, "--data", data, "--concurrency", "3")
	if rep.N != 8 || rep.Failed != 0 || rep.Resumed != 0 {
		t.Errorf("n %d failed %d resumed %d, want 8, 0, 0", rep.N, rep.Failed, rep.Resumed)
	}
	if rep.Pearson == nil || rep.Spearman == nil || rep.QWK == nil || rep.MAE == nil || rep.RMSE == nil || rep.Bias == nil {
		t.Fatalf("report lacks a figure: %+v", rep)
	}
	// The sample's good answers restate the reference and its poor ones do
	// not: the heuristic grader must rank them.
	if *rep.Pearson < 0.8 {
		t.Errorf("Pearson %.3f on the sample, want at least 0.8", *rep.Pearson)
	}
	if len(rep.Models) != 1 || rep.Models[0] != "heuristic-reference-v1" {
		t.Errorf("models %v", rep.Models)
	}
	// The state goes to the cache directory, never beside the data.
	if want := cache("XDG_CACHE_HOME"); !strings.HasPrefix(rep.State, filepath.Join(want, "assay", "calibrate", "sample.jsonl-")) {
		t.Errorf("state file %q, want it under %s/assay/calibrate", rep.State, want)
	}
	if entries, _ := os.ReadDir(filepath.Dir(data)); len(entries) != 1 {
		t.Errorf("the data's directory has %d entries, want only the data", len(entries))
	}
	state, err := os.ReadFile(rep.State)
	if err != nil || strings.Count(string(state), "\n") != 8 {
		t.Fatalf("state file: %v\n%s", err, state)
	}
	// A second run resumes everything and reports the same figures.
	again := calibrateJSON(t, cache, "--data", data)
	if again.Resumed != 8 || again.N != 8 || *again.Pearson != *rep.Pearson {
		t.Errorf("second run: resumed %d n %d pearson %v, want 8, 8, %v", again.Resumed, again.N, *again.Pearson, *rep.Pearson)
	}
	// --fresh grades everything again; --state puts the state elsewhere;
	// --no-state keeps none.
	if fresh := calibrateJSON(t, cache, "--data", data, "--fresh"); fresh.Resumed != 0 {
		t.Errorf("--fresh resumed %d", fresh.Resumed)
	}
	other := filepath.Join(t.TempDir(), "other.state")
	if rep := calibrateJSON(t, cache, "--data", data, "--state", other); rep.State != other {
		t.Errorf("--state: state %q", rep.State)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("--state: %v", err)
	}
	if rep := calibrateJSON(t, cache, "--data", data, "--no-state"); rep.State != "" || rep.Resumed != 0 {
		t.Errorf("--no-state: state %q resumed %d", rep.State, rep.Resumed)
	}
}

func TestCalibrateResumesAPartialState(t *testing.T) {
	data := copySample(t)
	state := filepath.Join(t.TempDir(), "state")
	calibrateJSON(t, env(nil), "--data", data, "--state", state)
	// Keep the first three results, as if the run had been interrupted.
	b, _ := os.ReadFile(state)
	lines := strings.SplitAfter(string(b), "\n")
	if err := os.WriteFile(state, []byte(strings.Join(lines[:3], "")), 0o644); err != nil {
		t.Fatal(err)
	}
	rep := calibrateJSON(t, env(nil), "--data", data, "--state", state)
	if rep.Resumed != 3 || rep.N != 8 {
		t.Errorf("resumed %d n %d, want 3 and 8", rep.Resumed, rep.N)
	}
}

func TestCalibrateText(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"calibrate", "--quiet", "--no-state", "--data", copySample(t)}, env(nil), &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Pearson r", "Spearman rho", "QWK", "MAE", "RMSE", "bias", "Confusion matrix", "Worst questions"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestCalibrateErrors(t *testing.T) {
	data := copySample(t)
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	os.WriteFile(bad, []byte(`{"question": "q", "answer": "a", "score": 1, "score_max": 5}`), 0o644)
	unknown := filepath.Join(t.TempDir(), "unknown.jsonl")
	os.WriteFile(unknown, []byte(`{"question": "What is a monad?", "rubric_id": "fp-monads"}`), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"calibrate"}, "--data FILE.jsonl is required"},
		{[]string{"calibrate", "--data", data, "--grader", "llm"}, "no LLM configured"},
		{[]string{"calibrate", "--data", data, "--grader", "oracle"}, `unknown grader "oracle"`},
		{[]string{"calibrate", "--data", data, "--concurrency", "0"}, "--concurrency must be at least 1"},
		{[]string{"calibrate", "--data", bad}, "line 1: missing reference_answer"},
		{[]string{"calibrate", "--data", filepath.Join(t.TempDir(), "none.jsonl")}, "no such file"},
		{[]string{"eval-retrieval"}, "--data PATH is required"},
		{[]string{"eval-retrieval", "--data", unknown}, `expects rubric "fp-monads", which is not in the embedded bank`},
	} {
		err := run(context.Background(), tc.args, env(nil), &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v, want %q", tc.args, err, tc.want)
		}
	}
}

type retrievalJSON struct {
	Embedder       string   `json:"embedder"`
	Threshold      float64  `json:"threshold"`
	OnTopic        int      `json:"on_topic"`
	Top1Accuracy   *float64 `json:"top1_accuracy"`
	OffTopic       int      `json:"off_topic"`
	FalseMatches   int      `json:"false_matches"`
	FalseMatchRate *float64 `json:"false_match_rate"`
}

func TestEvalRetrievalCommand(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"eval-retrieval", "--json", "--data", "../../testdata/retrieval"}, env(nil), &out); err != nil {
		t.Fatal(err)
	}
	var rep retrievalJSON
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if rep.OnTopic < 60 || rep.OffTopic < 10 || rep.Threshold != 0.2 || !strings.HasPrefix(rep.Embedder, "local-") {
		t.Errorf("report %+v", rep)
	}
	// The same bar as internal/evaluation's retrieval test.
	if *rep.Top1Accuracy < 0.9 || rep.FalseMatches != 0 {
		t.Errorf("top-1 accuracy %.3f, false matches %d; want ≥ 0.9 and 0", *rep.Top1Accuracy, rep.FalseMatches)
	}

	// Several --data flags and globs; the threshold comes from the
	// environment.
	out.Reset()
	args := []string{"eval-retrieval", "--json", "--data", "../../testdata/retrieval/db-*.jsonl", "--data", "../../testdata/retrieval/off-topic.jsonl"}
	if err := run(context.Background(), args, env(map[string]string{"ASSAY_MATCH_THRESHOLD": "0.01"}), &out); err != nil {
		t.Fatal(err)
	}
	rep = retrievalJSON{}
	json.Unmarshal(out.Bytes(), &rep)
	if rep.Threshold != 0.01 || rep.OnTopic < 15 || rep.OffTopic < 10 || rep.FalseMatches == 0 {
		t.Errorf("with threshold 0.01: %+v, want off-topic questions matched", rep)
	}

	out.Reset()
	if err := run(context.Background(), []string{"eval-retrieval", "--data", "../../testdata/retrieval"}, env(nil), &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "top-1 accuracy") || !strings.Contains(out.String(), "off-topic matched") {
		t.Errorf("text report:\n%s", out.String())
	}
}

func TestHelpListsTools(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"help"}, env(nil), &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"api calibrate", "api eval-retrieval"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
}
