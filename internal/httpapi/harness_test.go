package httpapi_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/assay-dev/assay/internal/auth"
	"github.com/assay-dev/assay/internal/embed"
	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/fault"
	"github.com/assay-dev/assay/internal/grader"
	"github.com/assay-dev/assay/internal/httpapi"
	"github.com/assay-dev/assay/internal/memory"
	"github.com/assay-dev/assay/internal/rubric"
	"github.com/assay-dev/assay/rubrics"
)

// Helpers shared by the tests of authentication, rate limits, idempotency,
// the evaluation cache, logging, shutdown and fuzzing.

// newServer wires the real service and router as newFixtureWithConfig
// does, for callers that need their own logger or have no *testing.T (fuzz
// targets). As in cmd/api, cfg.Metrics, when set, also observes the service.
func newServer(tb testing.TB, cfg httpapi.Config, store evaluation.Store, log *slog.Logger, extra ...evaluation.Grader) http.Handler {
	tb.Helper()
	bank, err := rubric.Load(rubrics.FS)
	if err != nil {
		tb.Fatal(err)
	}
	graders := append([]evaluation.Grader{grader.Heuristic{}}, extra...)
	scfg := evaluation.Config{MatchThreshold: 0.20, MaxAnswerRunes: 2000}
	if cfg.Metrics != nil {
		scfg.Observer = cfg.Metrics
	}
	svc := evaluation.NewService(store, embed.NewLocalForBank(bank), graders, scfg, log)
	if _, err := svc.SyncRubrics(context.Background(), bank); err != nil {
		tb.Fatal(err)
	}
	return httpapi.New(svc, cfg, log)
}

// keyedConfig is testConfig with API keys from keys, so that the API is
// not open once keys holds an active key.
func keyedConfig(keys auth.Store) httpapi.Config {
	cfg := testConfig()
	cfg.Auth = auth.NewAuthenticator(keys, false)
	return cfg
}

// newKey mints a key with scopes, stores it and returns it with the token a
// client sends. edit, if set, changes the key before it is stored.
func newKey(t testing.TB, keys *memory.Keys, edit func(*auth.Key), scopes ...string) (auth.Key, string) {
	t.Helper()
	k, token, err := auth.Mint("test key", scopes, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(&k)
	}
	if err := keys.CreateKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	return k, token
}

func bearer(token string) string { return "Bearer " + token }

// send makes a request through h. kv are header names and values in
// pairs; a body without a Content-Type in kv is sent as JSON.
func send(t testing.TB, h http.Handler, method, path, body string, kv ...string) *httptest.ResponseRecorder {
	t.Helper()
	if len(kv)%2 != 0 {
		t.Fatalf("send: odd header list %q", kv)
	}
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i < len(kv); i += 2 {
		req.Header.Set(kv[i], kv[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// send is send through the fixture's router.
func (f *fixture) send(method, path, body string, kv ...string) *httptest.ResponseRecorder {
	f.t.Helper()
	return send(f.t, f.handler, method, path, body, kv...)
}

// jsonBody marshals v.
func jsonBody(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// countEvaluations is the number of evaluations in store.
func countEvaluations(t testing.TB, store evaluation.Store) int {
	t.Helper()
	es, err := store.ListEvaluations(context.Background(), evaluation.EvaluationFilter{Limit: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// countingStore counts the evaluations stored through it, in constant time.
type countingStore struct {
	evaluation.Store
	created *atomic.Int64
}

func newCountingStore(inner evaluation.Store) countingStore {
	return countingStore{Store: inner, created: new(atomic.Int64)}
}

func (s countingStore) CreateEvaluation(ctx context.Context, e evaluation.Evaluation) error {
	err := s.Store.CreateEvaluation(ctx, e)
	if err == nil {
		s.created.Add(1)
	}
	return err
}

// wantProblem checks that rec is a problem+json response of the given
// status and type slug, and returns it.
func wantProblem(t testing.TB, rec *httptest.ResponseRecorder, status int, slug string) problem {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status = %d, want %d; body %s", rec.Code, status, rec.Body)
	}
	if got := rec.Header().Get("Content-Type"); got != "application/problem+json" {
		t.Errorf("Content-Type = %q, want application/problem+json", got)
	}
	var p problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatalf("decoding the problem %q: %v", rec.Body, err)
	}
	if got, want := p.Type, problemBase+slug; got != want {
		t.Errorf("problem type = %q, want %q", got, want)
	}
	if p.Status != status || p.Title == "" || p.Detail == "" {
		t.Errorf("problem = %+v, want status %d with a title and a detail", p, status)
	}
	return p
}

// countingGrader is the heuristic grader under another kind, counting the
// gradings it makes.
type countingGrader struct {
	kind  string
	calls *atomic.Int64
}

func newCountingGrader(kind string) countingGrader {
	return countingGrader{kind: kind, calls: new(atomic.Int64)}
}

func (g countingGrader) Kind() string { return g.kind }

func (g countingGrader) Grade(ctx context.Context, in evaluation.GradeInput) (evaluation.Grading, error) {
	g.calls.Add(1)
	return grader.Heuristic{}.Grade(ctx, in)
}

// blockingGrader grades like the heuristic grader, but only once release is
// closed; it signals entered when a grading starts.
type blockingGrader struct {
	kind    string
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func newBlockingGrader(kind string) *blockingGrader {
	return &blockingGrader{kind: kind, entered: make(chan struct{}, 64), release: make(chan struct{})}
}

func (g *blockingGrader) Kind() string { return g.kind }

func (g *blockingGrader) Grade(ctx context.Context, in evaluation.GradeInput) (evaluation.Grading, error) {
	g.entered <- struct{}{}
	select {
	case <-g.release:
	case <-ctx.Done():
		return evaluation.Grading{}, ctx.Err()
	}
	return grader.Heuristic{}.Grade(ctx, in)
}

// Release lets every grading, running or to come, finish.
func (g *blockingGrader) Release() { g.once.Do(func() { close(g.release) }) }

// waitEntered waits until a grading has started.
func (g *blockingGrader) waitEntered(t testing.TB) {
	t.Helper()
	select {
	case <-g.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the grading never started")
	}
}

// failFirstGrader fails its first grading in the way fail says (an error,
// or a panic when fail is nil) and grades like the heuristic grader after
// that.
type failFirstGrader struct {
	kind  string
	fail  error
	calls *atomic.Int64
}

func (g failFirstGrader) Kind() string { return g.kind }

func (g failFirstGrader) Grade(ctx context.Context, in evaluation.GradeInput) (evaluation.Grading, error) {
	if g.calls.Add(1) == 1 {
		if g.fail == nil {
			panic("grader exploded")
		}
		return evaluation.Grading{}, g.fail
	}
	return grader.Heuristic{}.Grade(ctx, in)
}

// errGraderDown is how a grader reports that its model is unavailable.
var errGraderDown = fault.New(fault.Unavailable, "the grading model is unavailable; retry later")

// lockedBuffer is a log sink safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
