package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

var mockListening = regexp.MustCompile(`listening on (http://\S+/v1)`)

// startMockLLM builds and runs cmd/mockllm, the standalone mock
// OpenAI-compatible server, and returns its base URL.
func startMockLLM(t *testing.T, args ...string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mockllm")
	if out, err := exec.Command("go", "build", "-o", bin, "../mockllm").CombinedOutput(); err != nil {
		t.Fatalf("building mockllm: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, append([]string{"--addr", "127.0.0.1:0"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() })
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := mockListening.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	select {
	case u := <-found:
		return u
	case <-time.After(60 * time.Second):
		t.Fatal("mockllm did not start")
		return ""
	}
}

// TestLLMGraderThroughTheAPI grades through the API with the LLM grader
// against cmd/mockllm: the evaluation is LLM-graded, every quote is
// verbatim at its offsets, and tokens and cost are filled.
func TestLLMGraderThroughTheAPI(t *testing.T) {
	mock := startMockLLM(t)
	base, out := startServer(t, map[string]string{
		"OPENAI_BASE_URL":  mock,
		"OPENAI_API_KEY":   "sk-test-not-a-real-key",
		"ASSAY_LLM_MODEL":  "mock-grader",
		"ASSAY_LLM_PRICES": "mock-grader=0.15/0.60",
		"ASSAY_LLM_SEED":   "7",
	})
	answer := "Rate limiting caps how many requests each API key may send per second. I use a token bucket in Redis: it refills at a steady rate and allows short bursts. Over the limit the API answers 429 Too Many Requests with a Retry-After header."
	body, _ := json.Marshal(map[string]string{"question": "What is rate limiting and how do you implement it?", "answer": answer})
	var e struct {
		Rubric   struct{ ID string }
		Criteria []struct {
			ID       string
			Level    int
			Evidence []struct {
				Quote      string
				Start, End int
			}
		}
		FollowUps []struct{ Criterion string } `json:"follow_ups"`
		Grader    struct {
			Kind          string
			Model         string
			PromptVersion string `json:"prompt_version"`
			Seed          *int
			Tokens        *struct{ Prompt, Completion, Total int }
			CostUSD       *float64 `json:"cost_usd"`
		}
	}
	if code := postJSON(t, base+"/v1/evaluations", string(body), &e); code != 201 {
		t.Fatalf("POST = %d, want 201", code)
	}
	g := e.Grader
	if g.Kind != "llm" || g.Model != "mock-grader" || g.PromptVersion == "" || g.Seed == nil || *g.Seed != 7 {
		t.Errorf("grader = %+v, want kind llm, model mock-grader, a prompt version and seed 7", g)
	}
	if g.Tokens == nil || g.Tokens.Prompt == 0 || g.Tokens.Completion == 0 || g.CostUSD == nil || *g.CostUSD <= 0 {
		t.Errorf("tokens %+v cost %v, want both filled", g.Tokens, g.CostUSD)
	}
	runes := []rune(answer)
	quotes := 0
	for _, c := range e.Criteria {
		for _, ev := range c.Evidence {
			quotes++
			if ev.Start < 0 || ev.End > len(runes) || string(runes[ev.Start:ev.End]) != ev.Quote {
				t.Errorf("criterion %s: quote %q is not the answer at [%d,%d)", c.ID, ev.Quote, ev.Start, ev.End)
			}
		}
	}
	if e.Rubric.ID != "api-rate-limiting" || quotes == 0 || len(e.FollowUps) == 0 {
		t.Errorf("rubric %s, %d quotes, %d follow-ups: want api-rate-limiting with quotes and follow-ups", e.Rubric.ID, quotes, len(e.FollowUps))
	}

	if strings.Contains(out.String(), "sk-test-not-a-real-key") || strings.Contains(out.String(), "token bucket in Redis") {
		t.Error("the log contains the API key or the answer")
	}

	// A request may still ask for the heuristic grader.
	heur, _ := json.Marshal(map[string]string{"rubric_id": "api-rate-limiting", "answer": answer, "grader": "heuristic"})
	var h struct{ Grader struct{ Kind string } }
	if code := postJSON(t, base+"/v1/evaluations", string(heur), &h); code != 201 || h.Grader.Kind != "heuristic" {
		t.Errorf("grader heuristic: %d %q", code, h.Grader.Kind)
	}
}
