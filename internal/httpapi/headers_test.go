package httpapi_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/assay-dev/assay/internal/auth"
	"github.com/assay-dev/assay/internal/memory"
	"github.com/assay-dev/assay/internal/metrics"
)

func TestCORS(t *testing.T) {
	const app = "https://app.example"
	keys := memory.NewKeys()
	_, token := newKey(t, keys, nil, auth.ScopeGrade)
	cfg := keyedConfig(keys)
	cfg.CORSOrigins = []string{app}
	f := newFixtureWithConfig(t, cfg, memory.New())
	anyCfg := testConfig()
	anyCfg.CORSOrigins = []string{"*"}
	anyOrigin := newFixtureWithConfig(t, anyCfg, memory.New())

	split := func(h string) []string {
		var out []string
		for _, v := range strings.Split(h, ",") {
			out = append(out, strings.ToLower(strings.TrimSpace(v)))
		}
		return out
	}
	tests := []struct {
		name         string
		f            *fixture
		method, path string
		kv           []string
		wantStatus   int
		wantOrigin   string // Access-Control-Allow-Origin; "" means no CORS headers at all
		preflight    bool
	}{
		{"allowed origin", f, "GET", "/healthz", []string{"Origin", app}, 200, app, false},
		{"allowed origin, authenticated call", f, "GET", "/v1/rubrics", []string{"Origin", app, "Authorization", bearer(token)}, 200, app, false},
		{"allowed origin, error response", f, "GET", "/v1/rubrics", []string{"Origin", app}, 401, app, false},
		{"preflight from the allowed origin needs no key", f, "OPTIONS", "/v1/evaluations",
			[]string{"Origin", app, "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization, content-type, idempotency-key"}, 204, app, true},
		{"preflight for a rubric write", f, "OPTIONS", "/v1/rubrics/db-acid",
			[]string{"Origin", app, "Access-Control-Request-Method", "PUT"}, 204, app, true},
		{"other origin", f, "GET", "/healthz", []string{"Origin", "https://evil.example"}, 200, "", false},
		{"origin differing only by scheme", f, "GET", "/healthz", []string{"Origin", "http://app.example"}, 200, "", false},
		{"preflight from another origin", f, "OPTIONS", "/v1/evaluations",
			[]string{"Origin", "https://evil.example", "Access-Control-Request-Method", "POST"}, 405, "", false},
		{"no origin", f, "GET", "/healthz", nil, 200, "", false},
		{"any origin allowed", anyOrigin, "GET", "/healthz", []string{"Origin", "https://whoever.example"}, 200, "https://whoever.example", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := tt.f.send(tt.method, tt.path, "", tt.kv...)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tt.wantStatus, rec.Body)
			}
			h := rec.Header()
			if tt.wantOrigin == "" {
				for name := range h {
					if strings.HasPrefix(strings.ToLower(name), "access-control-") {
						t.Errorf("%s = %q sent to an origin that is not allowed", name, h.Get(name))
					}
				}
				return
			}
			if got := h.Get("Access-Control-Allow-Origin"); got != tt.wantOrigin {
				t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, tt.wantOrigin)
			}
			if !slices.Contains(h.Values("Vary"), "Origin") {
				t.Errorf("Vary = %q, want it to include Origin", h.Values("Vary"))
			}
			exposed := split(h.Get("Access-Control-Expose-Headers"))
			for _, want := range []string{"location", "retry-after", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", "x-request-id", "idempotent-replayed"} {
				if !slices.Contains(exposed, want) {
					t.Errorf("Access-Control-Expose-Headers = %q lacks %s", h.Get("Access-Control-Expose-Headers"), want)
				}
			}
			if !tt.preflight {
				if got := h.Get("Access-Control-Allow-Methods"); got != "" {
					t.Errorf("Access-Control-Allow-Methods = %q on a simple request", got)
				}
				return
			}
			if rec.Body.Len() != 0 {
				t.Errorf("preflight body = %q, want none", rec.Body)
			}
			methods := split(h.Get("Access-Control-Allow-Methods"))
			for _, want := range []string{"get", "post", "put", "delete"} {
				if !slices.Contains(methods, want) {
					t.Errorf("Access-Control-Allow-Methods = %q lacks %s", h.Get("Access-Control-Allow-Methods"), want)
				}
			}
			allowed := split(h.Get("Access-Control-Allow-Headers"))
			for _, want := range []string{"authorization", "content-type", "idempotency-key", "cache-control", "x-request-id"} {
				if !slices.Contains(allowed, want) {
					t.Errorf("Access-Control-Allow-Headers = %q lacks %s", h.Get("Access-Control-Allow-Headers"), want)
				}
			}
			if h.Get("Access-Control-Max-Age") == "" {
				t.Error("no Access-Control-Max-Age on a preflight")
			}
		})
	}
}

func TestSecurityHeaders(t *testing.T) {
	keys := memory.NewKeys()
	_, token := newKey(t, keys, nil, auth.ScopeGrade)
	f := newFixtureWithConfig(t, keyedConfig(keys), memory.New())
	want := map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}
	tests := []struct {
		name         string
		method, path string
		body         string
		kv           []string
		wantStatus   int
	}{
		{"health", "GET", "/healthz", "", nil, 200},
		{"document", "GET", "/openapi.yaml", "", nil, 200},
		{"created", "POST", "/v1/evaluations", `{"rubric_id":"db-acid","answer":"All or nothing."}`, []string{"Authorization", bearer(token)}, 201},
		{"unauthorized", "GET", "/v1/evaluations", "", nil, 401},
		{"forbidden", "DELETE", "/v1/rubrics/db-acid", "", []string{"Authorization", bearer(token)}, 403},
		{"no route", "GET", "/nothing", "", nil, 404},
		{"no method", "PATCH", "/v1/evaluations", "", nil, 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := f.send(tt.method, tt.path, tt.body, tt.kv...)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tt.wantStatus, rec.Body)
			}
			for name, value := range want {
				if got := rec.Header().Get(name); got != value {
					t.Errorf("%s = %q, want %q", name, got, value)
				}
			}
		})
	}
}

func TestRequestID(t *testing.T) {
	f := newFixture(t)
	generated := regexp.MustCompile(`^[0-9a-f]{16}$`)
	tests := []struct {
		name string
		sent string
		echo bool
	}{
		{"simple", "req-42", true},
		{"uuid", "0190f0e0-0000-7000-8000-000000000000", true},
		{"dots, colons and underscores", "trace:1.2_3", true},
		{"64 characters", strings.Repeat("a", 64), true},
		{"65 characters", strings.Repeat("a", 65), false},
		{"space", "req 42", false},
		{"quote", `req"42`, false},
		{"log field forgery", `x" level=ERROR msg="forged`, false},
		{"non-ASCII", "réq", false},
		{"empty", "", false},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var kv []string
			if tt.sent != "" {
				kv = []string{"X-Request-Id", tt.sent}
			}
			for _, path := range []string{"/healthz", "/v1/nothing"} {
				rec := f.send("GET", path, "", kv...)
				got := rec.Header().Get("X-Request-Id")
				if tt.echo {
					if got != tt.sent {
						t.Errorf("%s: X-Request-Id = %q, want %q echoed", path, got, tt.sent)
					}
					continue
				}
				if !generated.MatchString(got) {
					t.Errorf("%s: X-Request-Id = %q, want 16 generated hex digits in place of %q", path, got, tt.sent)
				}
				if seen[got] {
					t.Errorf("%s: generated id %q twice", path, got)
				}
				seen[got] = true
			}
		})
	}
}

// TestMetrics checks that /metrics serves the Prometheus text format with
// the request and evaluation series after a grading and a cache hit.
func TestMetrics(t *testing.T) {
	keys := memory.NewKeys()
	_, token := newKey(t, keys, nil, auth.ScopeGrade)
	cfg := keyedConfig(keys)
	cfg.Metrics = metrics.New() // shared with the service, as in cmd/api
	f := &fixture{t: t, handler: newServer(t, cfg, memory.New(), slog.New(slog.DiscardHandler))}
	body := `{"rubric_id":"db-acid","answer":"Atomicity means all or nothing; a failed transaction is rolled back."}`
	for i := range 2 { // the second is a cache hit
		if rec := f.send("POST", "/v1/evaluations", body, "Authorization", bearer(token)); rec.Code != http.StatusCreated {
			t.Fatalf("POST %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	if rec := f.send("GET", "/v1/evaluations", ""); rec.Code != http.StatusUnauthorized {
		t.Fatalf("GET without a key: %d", rec.Code)
	}

	rec := f.send("GET", "/metrics", "")
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q, want text/plain", ct)
	}
	text := rec.Body.String()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^# TYPE assay_http_request_duration_seconds histogram$`),
		regexp.MustCompile(`(?m)^assay_http_request_duration_seconds_count\{method="POST",route="/v1/evaluations",status="201"\} 2$`),
		regexp.MustCompile(`(?m)^assay_http_request_duration_seconds_count\{method="GET",route="/v1/evaluations",status="401"\} 1$`),
		regexp.MustCompile(`(?m)^# TYPE assay_evaluations_total counter$`),
		regexp.MustCompile(`(?m)^assay_evaluations_total\{band="[a-z]+",cached="false"\} 1$`),
		regexp.MustCompile(`(?m)^assay_evaluations_total\{band="[a-z]+",cached="true"\} 1$`),
		regexp.MustCompile(`(?m)^assay_evaluation_cache_hits_total 1$`),
		regexp.MustCompile(`(?m)^assay_grading_duration_seconds_count\{grader="heuristic",outcome="ok"\} 1$`),
	} {
		if !want.MatchString(text) {
			t.Errorf("/metrics lacks a line matching %s", want)
		}
	}
	if strings.Contains(text, token) || strings.Contains(text, "rolled back") {
		t.Error("/metrics holds a key or an answer")
	}
}

// TestOpenAPIJSON checks that /v1/openapi.json is openapi.yaml as JSON.
func TestOpenAPIJSON(t *testing.T) {
	f := newFixture(t)
	s := loadSpec(t, f)
	rec := f.send("GET", "/v1/openapi.json", "")
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, Content-Type %q; want 200 application/json", rec.Code, rec.Header().Get("Content-Type"))
	}
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if doc.OpenAPI != s.doc.OpenAPI || len(doc.Paths) != s.doc.Paths.Len() {
		t.Errorf("openapi %q with %d paths, want %q with %d", doc.OpenAPI, len(doc.Paths), s.doc.OpenAPI, s.doc.Paths.Len())
	}
}
