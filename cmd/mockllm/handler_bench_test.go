package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/grader"
	"github.com/assay-dev/assay/internal/rubric"
	"github.com/assay-dev/assay/rubrics"
)

// BenchmarkChat times the mock's handling of one chat completion exactly
// as the LLM grader sends it (json_schema format), without the latency:
// the mock's own CPU cost, which shares the machine with Assay in
// scripts/bench.sh. One op is one completion.
func BenchmarkChat(b *testing.B) {
	bodies := graderRequests(b)
	h := newHandler(options{dims: 256, seed: 1})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", bytes.NewReader(bodies[i%len(bodies)]))
		i++
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

// graderRequests captures the bodies the LLM grader sends for each seed
// rubric's reference answer.
func graderRequests(b *testing.B) [][]byte {
	var (
		mu     sync.Mutex
		bodies [][]byte
	)
	mock := newHandler(options{dims: 256, seed: 1})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, body)
		mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		mock.ServeHTTP(w, r)
	}))
	defer srv.Close()
	rs, err := rubric.Load(rubrics.FS)
	if err != nil {
		b.Fatal(err)
	}
	l, err := grader.NewLLM(grader.LLMConfig{BaseURL: srv.URL + "/v1", Model: "mock-grader", MaxAttempts: 1})
	if err != nil {
		b.Fatal(err)
	}
	for _, r := range rs {
		if _, err := l.Grade(context.Background(), evaluation.GradeInput{Rubric: r, Answer: r.ReferenceAnswer}); err != nil {
			b.Fatal(err)
		}
	}
	return bodies
}
