package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/memory"
)

// TestGracefulShutdownFinishesGrading starts a grading over a real
// connection, shuts the server down while it runs, and checks that the
// grading completes and is delivered before Shutdown returns.
func TestGracefulShutdownFinishesGrading(t *testing.T) {
	blocking := newBlockingGrader("blocking")
	t.Cleanup(blocking.Release)
	store := memory.New()
	h := newServer(t, testConfig(), store, slog.New(slog.DiscardHandler), blocking)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	url := "http://" + ln.Addr().String()

	type result struct {
		status int
		body   []byte
		err    error
	}
	client := &http.Client{Timeout: 20 * time.Second}
	got := make(chan result, 1)
	go func() {
		resp, err := client.Post(url+"/v1/evaluations", "application/json",
			strings.NewReader(`{"rubric_id":"db-acid","answer":"Atomicity means all or nothing.","grader":"blocking"}`))
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- result{status: resp.StatusCode, body: b, err: err}
	}()
	blocking.waitEntered(t)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	shutdown := make(chan error, 1)
	go func() { shutdown <- srv.Shutdown(ctx) }()

	// Shutdown closes the listener first: wait for that, so the grading is
	// released while the shutdown is under way.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the listener is still open after Shutdown began")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned (%v) while a grading was in flight", err)
	default:
	}

	blocking.Release()
	r := <-got
	if r.err != nil {
		t.Fatalf("the in-flight request failed: %v", r.err)
	}
	if r.status != http.StatusCreated {
		t.Fatalf("status = %d, want 201; body %s", r.status, r.body)
	}
	var e evaluation.Evaluation
	if err := json.Unmarshal(r.body, &e); err != nil || e.ID == "" {
		t.Fatalf("body %s is not an evaluation: %v", r.body, err)
	}
	if err := <-shutdown; err != nil {
		t.Errorf("Shutdown = %v, want nil", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve = %v, want http.ErrServerClosed", err)
	}
	if got := countEvaluations(t, store); got != 1 {
		t.Errorf("stored evaluations = %d, want 1", got)
	}
	if _, err := client.Get(url + "/healthz"); err == nil {
		t.Error("the server still answers after Shutdown")
	}
}
