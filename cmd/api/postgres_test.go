package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"syscall"
	"testing"

	"github.com/assay-dev/assay/internal/postgres/pgtest"
)

const gradeBody = `{"question":"What is rate limiting and how do you implement it?","answer":"A token bucket per API key, kept in Redis, refilled at a steady rate; over the limit the API answers 429 with Retry-After."}`

func TestPostgresEvaluationsSurviveRestart(t *testing.T) {
	db := pgtest.NewDatabase(t)
	first := startProcess(t, "DATABASE_URL="+db)
	resp, body := first.do(t, "POST", "/v1/evaluations", "", gradeBody)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST = %d %s", resp.StatusCode, body)
	}
	var e struct {
		ID     string
		Rubric struct{ ID string }
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(first.output(), "using PostgreSQL") {
		t.Errorf("server did not say it uses PostgreSQL:\n%s", first.output())
	}
	first.stop(t, syscall.SIGTERM)

	second := startProcess(t, "DATABASE_URL="+db)
	resp, got := second.do(t, "GET", "/v1/evaluations/"+e.ID, "", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET after restart = %d %s", resp.StatusCode, got)
	}
	var back map[string]any
	_ = json.Unmarshal([]byte(got), &back)
	if back["id"] != e.ID {
		t.Errorf("after restart got %v, want evaluation %s", back["id"], e.ID)
	}
}

// TestRateLimitIsSharedByReplicas runs two server processes on one
// database: a key's burst is spent across both, not once per replica.
func TestRateLimitIsSharedByReplicas(t *testing.T) {
	db := pgtest.NewDatabase(t)
	var out bytes.Buffer
	err := run(context.Background(), []string{"keys", "create", "--name", "replicas", "--scopes", "grade"},
		env(map[string]string{"DATABASE_URL": db}), &out)
	if err != nil {
		t.Fatalf("keys create: %v\n%s", err, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	key := lines[len(lines)-1]
	limits := []string{"DATABASE_URL=" + db, "ASSAY_RATE_LIMIT_RPS=0.01", "ASSAY_RATE_LIMIT_BURST=4"}
	a, b := startProcess(t, limits...), startProcess(t, limits...)
	var statuses []int
	for i := range 6 {
		p := a
		if i%2 == 1 {
			p = b
		}
		resp, body := p.do(t, "GET", "/v1/rubrics?limit=1", key, "")
		statuses = append(statuses, resp.StatusCode)
		if resp.Header.Get("RateLimit-Limit") != "4" {
			t.Errorf("request %d: RateLimit-Limit = %q, want 4", i, resp.Header.Get("RateLimit-Limit"))
		}
		if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
			t.Errorf("429 without Retry-After: %s", body)
		}
	}
	want := []int{200, 200, 200, 200, 429, 429}
	for i := range want {
		if statuses[i] != want[i] {
			t.Fatalf("statuses across two replicas = %v, want %v", statuses, want)
		}
	}
}
