package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/assay-dev/assay/internal/embed"
	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/grader"
	"github.com/assay-dev/assay/internal/httpapi"
	"github.com/assay-dev/assay/internal/memory"
	"github.com/assay-dev/assay/internal/ratelimit"
	"github.com/assay-dev/assay/internal/rubric"
	"github.com/assay-dev/assay/rubrics"
)

var update = flag.Bool("update", false, "rewrite golden files")

const (
	rateLimitQuestion = "What is rate limiting and how do you implement it?"
	rateLimitAnswer   = "Rate limiting caps how many requests a client may send per time window, to protect the service from abuse and keep tenants fair. " +
		"I would implement a token bucket per API key: it refills at a steady rate and allows bursts up to its capacity. " +
		"With several replicas the counters live in Redis and the check is an atomic Lua script, so concurrent requests cannot race past the limit. " +
		"When a client is over the limit the API returns 429 Too Many Requests with a Retry-After header."
)

type fixture struct {
	t       *testing.T
	handler http.Handler
	store   evaluation.Store
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureWithStore(t, memory.New())
}

func newFixtureWithStore(t *testing.T, store evaluation.Store) *fixture {
	t.Helper()
	return newFixtureWithGraders(t, store)
}

// newFixtureWithGraders is newFixtureWithStore with extra graders beside
// the heuristic one, which stays the default.
func newFixtureWithGraders(t *testing.T, store evaluation.Store, extra ...evaluation.Grader) *fixture {
	t.Helper()
	return newFixtureWithConfig(t, testConfig(), store, extra...)
}

// testConfig is the HTTP configuration of most tests: a small body limit
// and a rate limit no test reaches, except the tests that set their own.
func testConfig() httpapi.Config {
	return httpapi.Config{MaxBodyBytes: 16 << 10, DefaultLimit: ratelimit.Limit{RPS: 1e6, Burst: 1e6}}
}

// newFixtureWithConfig wires the real service and router, as cmd/api does,
// with the given HTTP configuration.
func newFixtureWithConfig(t *testing.T, cfg httpapi.Config, store evaluation.Store, extra ...evaluation.Grader) *fixture {
	t.Helper()
	bank, err := rubric.Load(rubrics.FS)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	graders := append([]evaluation.Grader{grader.Heuristic{}}, extra...)
	svc := evaluation.NewService(store, embed.NewLocalForBank(bank), graders,
		evaluation.Config{MatchThreshold: 0.20, MaxAnswerRunes: 2000}, log)
	if _, err := svc.SyncRubrics(context.Background(), bank); err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, handler: httpapi.New(svc, cfg, log), store: store}
}

// do sends a request through the real router.
func (f *fixture) do(method, path, contentType, body string) *httptest.ResponseRecorder {
	f.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	f.handler.ServeHTTP(rec, req)
	return rec
}

func (f *fixture) post(body any) *httptest.ResponseRecorder {
	f.t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.do(http.MethodPost, "/v1/evaluations", "application/json", string(b))
}

func decode[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("decoding %q: %v", rec.Body.String(), err)
	}
	return v
}

// golden compares got with testdata/NAME.golden after masking the fields
// that change on every run.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, got, "", "  "); err != nil {
		t.Fatal(err)
	}
	masked := uuidRe.ReplaceAll(pretty.Bytes(), []byte("<uuid>"))
	masked = createdRe.ReplaceAll(masked, []byte(`"created_at": "<time>"`))
	masked = latencyRe.ReplaceAll(masked, []byte(`"latency_ms": 0`))
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, masked, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(masked, want) {
		t.Errorf("%s differs from the golden file (go test ./internal/httpapi -update to accept):\ngot:\n%s", path, masked)
	}
}

var (
	uuidRe    = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	createdRe = regexp.MustCompile(`"created_at": "[^"]*"`)
	latencyRe = regexp.MustCompile(`"latency_ms": \d+`)
)
