package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeAssay answers POST /v1/evaluations like Assay: 201 and an
// evaluation, cached when the same body came before.
func fakeAssay(t *testing.T) (*httptest.Server, func() int) {
	var (
		mu   sync.Mutex
		seen = map[string]bool{}
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/evaluations" {
			http.NotFound(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		var req struct{ Answer, Question, Grader string }
		if err := json.Unmarshal(body, &req); err != nil || req.Answer == "" || req.Question == "" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		cached := seen[string(body)]
		seen[string(body)] = true
		mu.Unlock()
		kind := "llm"
		if req.Grader != "" {
			kind = req.Grader
		}
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]any{"cached": cached, "grader": map[string]string{"kind": kind}})
	}))
	t.Cleanup(srv.Close)
	return srv, func() int { mu.Lock(); defer mu.Unlock(); return len(seen) }
}

func runJSON(t *testing.T, args ...string) Report {
	t.Helper()
	var out bytes.Buffer
	args = append([]string{"-answers", "../../internal/grader/testdata/answers", "-rubrics", "../../rubrics"}, args...)
	if err := run(context.Background(), args, &out); err != nil {
		t.Fatalf("run: %v", err)
	}
	var r Report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("output is not a report: %v\n%s", err, out.String())
	}
	return r
}

func TestDistinctAnswers(t *testing.T) {
	srv, distinct := fakeAssay(t)
	r := runJSON(t, "-url", srv.URL, "-c", "8", "-n", "200", "-scenario", "heuristic")
	if r.OK != 200 || r.Errors != 0 || r.Cached != 0 || distinct() != 200 {
		t.Fatalf("ok %d, errors %d, cached %d, distinct bodies %d; want 200 distinct, none cached", r.OK, r.Errors, r.Cached, distinct())
	}
	if r.GraderKinds["heuristic"] != 200 {
		t.Errorf("grader kinds %v", r.GraderKinds)
	}
	l := r.LatencyMS
	if !(l.Min <= l.P50 && l.P50 <= l.P95 && l.P95 <= l.P99 && l.P99 <= l.Max) || r.Throughput <= 0 {
		t.Errorf("latencies %+v, throughput %v", l, r.Throughput)
	}
	if _, ok := r.Processes["loadgen"]; !ok {
		t.Errorf("no CPU figures of loadgen itself: %v", r.Processes)
	}
}

func TestCacheScenarioRepeatsPrimedAnswers(t *testing.T) {
	srv, distinct := fakeAssay(t)
	r := runJSON(t, "-url", srv.URL, "-c", "4", "-n", "100", "-scenario", "cache", "-cache-set", "10")
	if r.OK != 100 || r.Cached != 100 || distinct() != 10 {
		t.Fatalf("ok %d, cached %d, distinct bodies %d; want 100 cached over 10 primed bodies", r.OK, r.Cached, distinct())
	}
}

func TestErrorsAreCounted(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `{"type":"https://example.com/unavailable"}`)
	}))
	defer srv.Close()
	r := runJSON(t, "-url", srv.URL, "-c", "2", "-n", "10")
	if r.Errors != 10 || r.ErrorKinds["status 503 https://example.com/unavailable"] != 10 {
		t.Fatalf("errors %d %v", r.Errors, r.ErrorKinds)
	}
}

func TestReportKeepsTheTextAroundTheMarkers(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, r Report) {
		b, _ := json.Marshal(r)
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("ref-mock.json", Report{Target: "mock", Clients: 200, OK: 100, Throughput: 1000, LatencyMS: Latency{P50: 100, P95: 110, P99: 120}})
	write("llm.json", Report{Target: "assay", Scenario: "llm", Clients: 200, OK: 100, Throughput: 900, LatencyMS: Latency{P50: 105, P95: 120, P99: 150},
		Processes: map[string]ProcReport{"server": {CPUSeconds: 1, CPUPercent: 50, PeakRSSMB: 80}}})
	if err := os.WriteFile(filepath.Join(dir, "env.txt"), []byte("cores=2\ncpu=Test CPU\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	doc := filepath.Join(dir, "perf.md")
	if err := os.WriteFile(doc, []byte("# Title\n\nbefore\n\n"+beginMarker+"\nold figures\n"+endMarker+"\n\nafter\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), []string{"report", "-dir", dir, "-o", doc}, io.Discard); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(doc)
	s := string(b)
	for _, want := range []string{"# Title\n\nbefore\n\n" + beginMarker, endMarker + "\n\nafter\n", "2 cores, Test CPU", "| 1.05 | 1.09 | 1.25 |", "overhead ratio p50 ≤ 1.10"} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "old figures") {
		t.Errorf("old figures kept:\n%s", s)
	}
}

// TestBodiesAreWhatMarshalGave: the bodies, assembled from pieces encoded
// once, are the bytes json.Marshal gave for the maps loadgen sent before.
func TestBodiesAreWhatMarshalGave(t *testing.T) {
	for _, c := range []struct{ target, scenario string }{{"assay", "llm"}, {"assay", "heuristic"}, {"assay", "cache"}, {"mock", ""}} {
		o, err := parse([]string{"-target", c.target, "-scenario", c.scenario, "-answers", "../../internal/grader/testdata/answers",
			"-rubrics", "../../rubrics", "-prompt", "../../internal/grader/testdata/golden/prompt_api-rate-limiting.golden"}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		b, err := newBodies(o)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int64{0, 1, 2, 59, 60, 61, 12345, 1 << 40, -1, -60, -61} {
			a := b.answers[int(uint64(n)%uint64(len(b.answers)))]
			text := a.text + fmt.Sprintf("\n\nReference %s-%d.", b.run, n)
			var want map[string]any
			switch {
			case c.target == "mock":
				tag := fmt.Sprintf("answer_%08x", uint32(n))
				want = map[string]any{
					"model": "mock-grader",
					"messages": []map[string]string{
						{"role": "system", "content": b.system},
						{"role": "user", "content": "<" + tag + ">\n" + text + "\n</" + tag + ">\n"},
					},
					"max_completion_tokens": 2000,
					"response_format":       map[string]string{"type": "json_object"},
				}
			case c.scenario == "heuristic":
				want = map[string]any{"question": a.question, "answer": text, "grader": "heuristic"}
			default:
				want = map[string]any{"question": a.question, "answer": text}
			}
			wantBody, _ := json.Marshal(want)
			if c.scenario == "cache" { // the primed bodies are answers -1, -2, ...
				if n < 0 && int(-1-n) < len(b.fixed) && !bytes.Equal(b.fixed[-1-n], wantBody) {
					t.Errorf("cache body %d:\n%s\nwant\n%s", n, b.fixed[-1-n], wantBody)
				}
				continue
			}
			if _, _, got := b.request(n); !bytes.Equal(got, wantBody) {
				t.Errorf("%s %s body %d:\n%s\nwant\n%s", c.target, c.scenario, n, got, wantBody)
			}
		}
	}
}

// TestEvalSummaryReadsWhatUnmarshalRead: evalSummary finds what decoding
// the evaluation found, and refuses what is not an evaluation.
func TestEvalSummaryReadsWhatUnmarshalRead(t *testing.T) {
	valid := []string{
		`{"id":"e1","answer":"say \"cached\":true and \\\"grader\\\":{","criteria":[{"kind":"x","cached":true}],"grader":{"model":"m","kind":"llm","tokens":{"kind":"z"}},"flags":[],"cached":false}`,
		`{"grader":{"kind":"heuristic"},"cached":true}`,
		"{\n  \"cached\" : true ,\n  \"grader\" : { \"latency_ms\" : 12, \"kind\" : \"llm\" },\n  \"score\": {\"overall\": 44.4, \"band\": \"partial\"}\n}\n",
		`{"grader":{"kind":"h\u00e9uristic"},"cached":null}`,
		`{"grader":null,"metadata":{"a":"]}"},"list":[[1,2],{"b":[]}],"cached":true}`,
		`{}`,
	}
	for _, s := range valid {
		var e struct {
			Cached bool `json:"cached"`
			Grader struct {
				Kind string `json:"kind"`
			} `json:"grader"`
		}
		if err := json.Unmarshal([]byte(s), &e); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		cached, kind, ok := evalSummary([]byte(s))
		if !ok || cached != e.Cached || kind != e.Grader.Kind {
			t.Errorf("%s: got %v %q %v, want %v %q", s, cached, kind, ok, e.Cached, e.Grader.Kind)
		}
	}
	for _, s := range []string{``, `<html>busy</html>`, `[]`, `{"cached":true`, `{"cached":yes}`, `{"grader":"llm"}`,
		`{"grader":{"kind":5}}`, `{"answer":"unterminated}`, `{"cached":true} {"cached":false}`} {
		if _, _, ok := evalSummary([]byte(s)); ok {
			t.Errorf("%s taken for an evaluation", s)
		}
	}
}

// TestTimeoutIsCounted: -timeout still ends a slow request (it is now a
// deadline of the request's context) and counts as a timeout.
func TestTimeoutIsCounted(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // then the server sees the client hang up
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	}))
	defer srv.Close()
	r := runJSON(t, "-url", srv.URL, "-c", "2", "-n", "4", "-timeout", "50ms")
	if r.Errors != 4 || r.ErrorKinds["timeout"] != 4 {
		t.Fatalf("errors %d %v, want 4 timeouts", r.Errors, r.ErrorKinds)
	}
}
