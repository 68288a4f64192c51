package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/memory"
)

// TestMaxGradings: with one slot, a second grading waits while the first is
// graded, and gets a 503 problem with Retry-After when its deadline comes
// first; a third, sent once the first is done, is graded.
func TestMaxGradings(t *testing.T) {
	cfg := testConfig()
	cfg.MaxGradings = 1
	cfg.RequestTimeout = 5 * time.Second
	g := heldGrader{entered: make(chan struct{}, 1), gateGrader: gateGrader{gate: make(chan struct{})}}
	f := newFixtureWithConfig(t, cfg, memory.New(), g)
	body := `{"rubric_id":"api-rate-limiting","grader":"held","answer":"A token bucket refills at a steady rate and allows bursts."}`

	var wg sync.WaitGroup
	var first int
	wg.Go(func() { first = f.do(http.MethodPost, "/v1/evaluations", "application/json", body).Code })
	<-g.entered // the first holds the slot, waiting on the gate

	// The second's own deadline ends before the first is released.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/v1/evaluations", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	second := httptest.NewRecorder()
	f.handler.ServeHTTP(second, req)
	if second.Code != http.StatusServiceUnavailable || second.Header().Get("Retry-After") == "" ||
		second.Header().Get("Content-Type") != "application/problem+json" {
		t.Errorf("second: got %d, Retry-After %q, %s; want a 503 problem with Retry-After",
			second.Code, second.Header().Get("Retry-After"), second.Header().Get("Content-Type"))
	}
	var p struct{ Detail string }
	if err := json.Unmarshal(second.Body.Bytes(), &p); err != nil || p.Detail == "" {
		t.Errorf("second: problem %s (%v), want a detail", second.Body, err)

	}

	close(g.gate)
	wg.Wait()
	if first != http.StatusOK && first != http.StatusCreated {
		t.Errorf("first: got %d, want it graded", first)
	}
	if third := f.do(http.MethodPost, "/v1/evaluations", "application/json", body); third.Code != first {
		t.Errorf("third: got %d %s, want %d once the slot is free", third.Code, third.Body, first)
	}
}

// heldGrader is a gateGrader that says when a grading reaches it.
type heldGrader struct {
	gateGrader
	entered chan struct{}
}

func (heldGrader) Kind() string { return "held" }

func (g heldGrader) Grade(ctx context.Context, in evaluation.GradeInput) (evaluation.Grading, error) {
	select {
	case g.entered <- struct{}{}:
	default:
	}
	return g.gateGrader.Grade(ctx, in)
}
