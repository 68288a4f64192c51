package httpapi_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/assay-dev/assay/internal/auth"
	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/memory"
)

func TestIdempotency(t *testing.T) {
	keys := memory.NewKeys()
	keyA, tokenA := newKey(t, keys, nil, auth.ScopeGrade)
	keyB, tokenB := newKey(t, keys, nil, auth.ScopeGrade)
	counting := newCountingGrader("counting")
	store := memory.New()
	f := newFixtureWithConfig(t, keyedConfig(keys), store, counting)

	body := jsonBody(t, map[string]any{"rubric_id": "db-acid", "answer": "Atomicity means all or nothing; a failed transaction is rolled back.", "grader": "counting"})
	other := jsonBody(t, map[string]any{"rubric_id": "db-acid", "answer": "Durability means a commit survives a crash.", "grader": "counting"})
	invalid := `{"rubric_id":"db-acid","answer":"  ","grader":"counting"}`

	var first *httptest.ResponseRecorder // the first response for key-1 and A
	tests := []struct {
		name         string
		token        string
		key          string
		body         string
		wantStatus   int
		wantType     string // problem type, for problems
		wantReplayed bool
		wantGradings int64 // gradings so far
		wantStored   int   // evaluations so far
		check        func(t *testing.T, rec *httptest.ResponseRecorder)
	}{
		{name: "first request", token: tokenA, key: "key-1", body: body, wantStatus: 201, wantGradings: 1, wantStored: 1,
			check: func(t *testing.T, rec *httptest.ResponseRecorder) { first = rec }},
		{name: "same key and body replays", token: tokenA, key: "key-1", body: body, wantStatus: 201, wantReplayed: true, wantGradings: 1, wantStored: 1,
			check: func(t *testing.T, rec *httptest.ResponseRecorder) {
				if !bytes.Equal(rec.Body.Bytes(), first.Body.Bytes()) {
					t.Errorf("replayed body differs:\ngot  %s\nwant %s", rec.Body, first.Body)
				}
				for _, h := range []string{"Location", "Content-Type"} {
					if g, w := rec.Header().Get(h), first.Header().Get(h); g != w {
						t.Errorf("%s = %q, want %q as first sent", h, g, w)
					}
				}
			}},
		{name: "a third time, too", token: tokenA, key: "key-1", body: body, wantStatus: 201, wantReplayed: true, wantGradings: 1, wantStored: 1},
		{name: "same key, another body", token: tokenA, key: "key-1", body: other, wantStatus: 422, wantType: "invalid-field", wantGradings: 1, wantStored: 1},
		{name: "same key, same body reformatted", token: tokenA, key: "key-1", body: body + " ", wantStatus: 422, wantType: "invalid-field", wantGradings: 1, wantStored: 1},
		{name: "another key of the same caller", token: tokenA, key: "key-2", body: other, wantStatus: 201, wantGradings: 2, wantStored: 2},
		{name: "another API key with the same Idempotency-Key runs anew", token: tokenB, key: "key-1", body: body, wantStatus: 201, wantGradings: 3 /* the cache is per API key */, wantStored: 3,
			check: func(t *testing.T, rec *httptest.ResponseRecorder) {
				e, was := decode[evaluation.Evaluation](t, rec), decode[evaluation.Evaluation](t, first)
				if e.ID == was.ID || e.APIKeyID != keyB.ID || was.APIKeyID != keyA.ID {
					t.Errorf("B got evaluation %s of key %q; want a new one of its own (%q), not A's %s", e.ID, e.APIKeyID, keyB.ID, was.ID)
				}
			}},
		{name: "B replays its own", token: tokenB, key: "key-1", body: body, wantStatus: 201, wantReplayed: true, wantGradings: 3, wantStored: 3},
		{name: "without a key nothing is replayed", token: tokenA, body: other, wantStatus: 201, wantGradings: 3, wantStored: 4},
		{name: "a 4xx outcome is stored", token: tokenA, key: "key-3", body: invalid, wantStatus: 422, wantType: "invalid-field", wantGradings: 3, wantStored: 4},
		{name: "and replayed", token: tokenA, key: "key-3", body: invalid, wantStatus: 422, wantType: "invalid-field", wantReplayed: true, wantGradings: 3, wantStored: 4},
		{name: "longest key", token: tokenA, key: strings.Repeat("k", 255), body: body, wantStatus: 201, wantGradings: 3, wantStored: 5},
		{name: "over-long key", token: tokenA, key: strings.Repeat("k", 256), body: body, wantStatus: 400, wantType: "invalid-parameter", wantGradings: 3, wantStored: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kv := []string{"Authorization", bearer(tt.token)}
			if tt.key != "" {
				kv = append(kv, "Idempotency-Key", tt.key)
			}
			rec := f.send("POST", "/v1/evaluations", tt.body, kv...)
			if tt.wantType != "" {
				p := wantProblem(t, rec, tt.wantStatus, tt.wantType)
				if tt.wantType == "invalid-parameter" && (len(p.Errors) == 0 || p.Errors[0].Parameter != "Idempotency-Key") {
					t.Errorf("errors = %+v, want one naming Idempotency-Key", p.Errors)
				}
			} else if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tt.wantStatus, rec.Body)
			}
			wantHeader := ""
			if tt.wantReplayed {
				wantHeader = "true"
			}
			if got := rec.Header().Get("Idempotent-Replayed"); got != wantHeader {
				t.Errorf("Idempotent-Replayed = %q, want %q", got, wantHeader)
			}
			if rec.Header().Get("X-Request-Id") == "" || rec.Header().Get("RateLimit-Remaining") == "" {
				t.Errorf("a response lacks X-Request-Id or RateLimit-Remaining: %v", rec.Header())
			}
			if got := counting.calls.Load(); got != tt.wantGradings {
				t.Errorf("gradings = %d, want %d", got, tt.wantGradings)
			}
			if got := countEvaluations(t, store); got != tt.wantStored {
				t.Errorf("stored evaluations = %d, want %d", got, tt.wantStored)
			}
			if tt.check != nil {
				tt.check(t, rec)
			}
		})
	}
}

// TestIdempotencyInFlight sends a duplicate while the first request is
// still grading.
func TestIdempotencyInFlight(t *testing.T) {
	blocking := newBlockingGrader("blocking")
	t.Cleanup(blocking.Release)
	store := memory.New()
	f := newFixtureWithGraders(t, store, blocking)
	body := `{"rubric_id":"db-acid","answer":"Atomicity means all or nothing.","grader":"blocking"}`

	firstDone := make(chan *httptest.ResponseRecorder, 1)
	go func() {
		req := httptest.NewRequest("POST", "/v1/evaluations", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "in-flight")
		rec := httptest.NewRecorder()
		f.handler.ServeHTTP(rec, req)
		firstDone <- rec
	}()
	blocking.waitEntered(t)

	t.Run("duplicate while in flight", func(t *testing.T) {
		rec := f.send("POST", "/v1/evaluations", body, "Idempotency-Key", "in-flight")
		wantProblem(t, rec, http.StatusConflict, "conflict")
		if got := rec.Header().Get("Idempotent-Replayed"); got != "" {
			t.Errorf("Idempotent-Replayed = %q on a conflict", got)
		}
	})
	t.Run("another body while in flight", func(t *testing.T) {
		rec := f.send("POST", "/v1/evaluations", strings.Replace(body, "nothing", "none", 1), "Idempotency-Key", "in-flight")
		wantProblem(t, rec, http.StatusUnprocessableEntity, "invalid-field")
	})

	blocking.Release()
	first := <-firstDone
	if first.Code != http.StatusCreated {
		t.Fatalf("first request: status %d, want 201; body %s", first.Code, first.Body)
	}
	t.Run("after it finished the duplicate replays", func(t *testing.T) {
		rec := f.send("POST", "/v1/evaluations", body, "Idempotency-Key", "in-flight")
		if rec.Code != http.StatusCreated || rec.Header().Get("Idempotent-Replayed") != "true" || !bytes.Equal(rec.Body.Bytes(), first.Body.Bytes()) {
			t.Errorf("status %d, Idempotent-Replayed %q, body %s; want the first response replayed", rec.Code, rec.Header().Get("Idempotent-Replayed"), rec.Body)
		}
	})
	if got := countEvaluations(t, store); got != 1 {
		t.Errorf("stored evaluations = %d, want 1", got)
	}
	if got := len(blocking.entered); got != 0 {
		t.Errorf("%d more gradings started, want none", got)
	}
}

// TestIdempotencyFailuresAreNotStored checks that a request that failed on
// the server's side (an error or a panic) can be retried with the same key
// and runs again.
func TestIdempotencyFailuresAreNotStored(t *testing.T) {
	tests := []struct {
		name       string
		fail       error // nil: the grader panics
		wantStatus int
		wantType   string
	}{
		{"grader unavailable", errGraderDown, 503, "unavailable"},
		{"handler panics", nil, 500, "internal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := failFirstGrader{kind: "fails-once", fail: tt.fail, calls: new(atomic.Int64)}
			store := memory.New()
			f := newFixtureWithGraders(t, store, g)
			body := `{"rubric_id":"db-acid","answer":"Atomicity means all or nothing.","grader":"fails-once"}`

			wantProblem(t, f.send("POST", "/v1/evaluations", body, "Idempotency-Key", "retry-me"), tt.wantStatus, tt.wantType)
			rec := f.send("POST", "/v1/evaluations", body, "Idempotency-Key", "retry-me")
			if rec.Code != http.StatusCreated {
				t.Fatalf("retry: status %d, want 201 (a fresh run); body %s", rec.Code, rec.Body)
			}
			if got := rec.Header().Get("Idempotent-Replayed"); got != "" {
				t.Errorf("retry: Idempotent-Replayed = %q, want a fresh run", got)
			}
			if got := g.calls.Load(); got != 2 {
				t.Errorf("gradings = %d, want 2", got)
			}
			// The success is stored: a third attempt replays it.
			again := f.send("POST", "/v1/evaluations", body, "Idempotency-Key", "retry-me")
			if again.Header().Get("Idempotent-Replayed") != "true" || !bytes.Equal(again.Body.Bytes(), rec.Body.Bytes()) {
				t.Errorf("third attempt: Idempotent-Replayed %q, body %s; want the success replayed", again.Header().Get("Idempotent-Replayed"), again.Body)
			}
			if got := countEvaluations(t, store); got != 1 {
				t.Errorf("stored evaluations = %d, want 1", got)
			}
		})
	}
}
