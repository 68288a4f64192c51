package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assay-dev/assay/internal/config"
)

// syncBuffer is a bytes.Buffer safe for the server goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

var listening = regexp.MustCompile(`msg=listening addr=(\S+)`)

// startServer runs `api serve` in-process and returns its base URL.
func startServer(t *testing.T, vars map[string]string, args ...string) (string, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...), env(vars), out) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run returned %v after shutdown", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("server did not shut down")
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if m := listening.FindStringSubmatch(out.String()); m != nil {
			return "http://" + m[1], out
		}
		select {
		case err := <-done:
			t.Fatalf("run exited early: %v\n%s", err, out)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("server did not start:\n%s", out)
	return "", nil
}

func TestServeZeroConfig(t *testing.T) {
	base, out := startServer(t, nil)
	if !strings.Contains(out.String(), "nothing will be persisted") {
		t.Errorf("start-up log does not warn about the in-memory store:\n%s", out)
	}
	body := `{"question":"What is rate limiting and how do you implement it?","answer":"I use a token bucket per API key in Redis, refilled at a steady rate so short bursts pass, and reply 429 with Retry-After when it is empty."}`
	resp, err := http.Post(base+"/v1/evaluations", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status = %d, want 201", resp.StatusCode)
	}
	var e struct {
		Rubric   struct{ ID string }
		Criteria []struct {
			Level    int
			Evidence []struct{ Quote string }
		}
		FollowUps []struct{ Question string } `json:"follow_ups"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatal(err)
	}
	if e.Rubric.ID != "api-rate-limiting" || len(e.Criteria) == 0 || len(e.FollowUps) == 0 || len(e.Criteria[1].Evidence) == 0 {
		t.Errorf("evaluation = %+v, want rubric api-rate-limiting with levels, evidence and follow-ups", e)
	}
	if strings.Contains(out.String(), "token bucket per API key") {
		t.Error("the answer text appears in the log")
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		r, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d, want 200", path, r.StatusCode)
		}
	}
}

func TestRubricsLint(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"rubrics", "lint"}, env(nil), &out); err != nil {
		t.Fatalf("lint of the embedded bank: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "ok: 20 rubrics") {
		t.Errorf("output %q, want ok: 20 rubrics", out.String())
	}

	dir := t.TempDir()
	seed, err := os.ReadFile("../../rubrics/db-acid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(seed), "weight:", "weight: 0 #", 1)
	if err := os.WriteFile(filepath.Join(dir, "db-acid.yaml"), []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "other.yaml"), seed, 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	err = run(context.Background(), []string{"rubrics", "lint", dir}, env(nil), &out)
	if err == nil {
		t.Fatalf("lint passed a broken folder:\n%s", out.String())
	}
	for _, want := range []string{"db-acid.yaml: criteria[0].weight: must be greater than 0", `other.yaml: id: "db-acid" must match the file name "other"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("lint output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestREADMEListsEverySetting keeps the README's configuration table in step
// with the code.
func TestREADMEListsEverySetting(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range config.Table() {
		if !strings.Contains(string(readme), "`"+row[1]+"`") {
			t.Errorf("README does not list %s (%s)", row[1], row[3])
		}
	}
}
