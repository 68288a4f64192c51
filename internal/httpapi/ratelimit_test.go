package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/assay-dev/assay/internal/auth"
	"github.com/assay-dev/assay/internal/memory"
	"github.com/assay-dev/assay/internal/ratelimit"
)

// rateHeaders are the RateLimit headers of a response, -1 when absent or
// not an integer.
type rateHeaders struct{ limit, remaining, reset, retryAfter int }

func rateHeadersOf(rec *httptest.ResponseRecorder) rateHeaders {
	n := func(name string) int {
		v, err := strconv.Atoi(rec.Header().Get(name))
		if err != nil {
			return -1
		}
		return v
	}
	return rateHeaders{n("RateLimit-Limit"), n("RateLimit-Remaining"), n("RateLimit-Reset"), n("Retry-After")}
}

// near reports whether got is want or one less: the bucket refills a
// little between requests, which can take a second off a rounded-up wait.
func near(got, want int) bool { return got == want || got == want-1 }

// TestRateLimit sends requests against a bucket of 2 that refills one token
// per 1000 s, so the waits in the headers are exact up to rounding.
func TestRateLimit(t *testing.T) {
	keys := memory.NewKeys()
	_, keyA := newKey(t, keys, nil, auth.ScopeGrade)
	_, keyB := newKey(t, keys, nil, auth.ScopeGrade)
	_, roomy := newKey(t, keys, func(k *auth.Key) { k.RateRPS, k.RateBurst = 0.001, 4 }, auth.ScopeGrade)
	cfg := keyedConfig(keys)
	cfg.DefaultLimit = ratelimit.Limit{RPS: 0.001, Burst: 2}
	f := newFixtureWithConfig(t, cfg, memory.New())

	tests := []struct {
		name       string
		token      string
		method     string
		path       string
		wantStatus int
		want       rateHeaders // retryAfter -1: no Retry-After
	}{
		{"A: first", keyA, "GET", "/v1/rubrics", 200, rateHeaders{2, 1, 1000, -1}},
		{"A: second, another route", keyA, "GET", "/v1/evaluations", 200, rateHeaders{2, 0, 2000, -1}},
		{"A: third is refused", keyA, "GET", "/v1/rubrics", 429, rateHeaders{2, 0, 2000, 1000}},
		{"A: fourth is refused too", keyA, "POST", "/v1/evaluations", 429, rateHeaders{2, 0, 2000, 1000}},
		{"B is independent of A", keyB, "GET", "/v1/rubrics", 200, rateHeaders{2, 1, 1000, -1}},
		{"B: an error response counts and carries the headers", keyB, "GET", "/v1/evaluations/0190f0e0-0000-7000-8000-000000000000", 404, rateHeaders{2, 0, 2000, -1}},
		{"B: third is refused", keyB, "GET", "/v1/rubrics", 429, rateHeaders{2, 0, 2000, 1000}},
		{"override: 1 of 4", roomy, "GET", "/v1/rubrics", 200, rateHeaders{4, 3, 1000, -1}},
		{"override: 2 of 4", roomy, "GET", "/v1/rubrics", 200, rateHeaders{4, 2, 2000, -1}},
		{"override: 3 of 4, a 403 counts", roomy, "DELETE", "/v1/rubrics/db-acid", 403, rateHeaders{4, 1, 3000, -1}},
		{"override: 4 of 4", roomy, "GET", "/v1/rubrics", 200, rateHeaders{4, 0, 4000, -1}},
		{"override: fifth is refused", roomy, "GET", "/v1/rubrics", 429, rateHeaders{4, 0, 4000, 1000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := ""
			if tt.method == "POST" {
				body = `{"rubric_id":"db-acid","answer":"All or nothing."}`
			}
			rec := f.send(tt.method, tt.path, body, "Authorization", bearer(tt.token))
			if tt.wantStatus == http.StatusTooManyRequests {
				wantProblem(t, rec, http.StatusTooManyRequests, "rate-limited")
			} else if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tt.wantStatus, rec.Body)
			}
			got := rateHeadersOf(rec)
			if got.limit != tt.want.limit || got.remaining != tt.want.remaining || !near(got.reset, tt.want.reset) {
				t.Errorf("RateLimit-Limit, -Remaining, -Reset = %d, %d, %d; want %d, %d, %d",
					got.limit, got.remaining, got.reset, tt.want.limit, tt.want.remaining, tt.want.reset)
			}
			if tt.want.retryAfter < 0 {
				if v := rec.Header().Get("Retry-After"); v != "" {
					t.Errorf("Retry-After = %q on an allowed request, want none", v)
				}
			} else if !near(got.retryAfter, tt.want.retryAfter) {
				t.Errorf("Retry-After = %q, want %d", rec.Header().Get("Retry-After"), tt.want.retryAfter)
			}
		})
	}
}

// TestRateLimitHeadersOnEveryResponse checks the headers on each kind of
// response a caller can get once authenticated.
func TestRateLimitHeadersOnEveryResponse(t *testing.T) {
	keys := memory.NewKeys()
	// A bucket that does not refill during the test, so each request
	// takes exactly one token.
	_, grade := newKey(t, keys, func(k *auth.Key) { k.RateRPS, k.RateBurst = 0.001, 100 }, auth.ScopeGrade)
	f := newFixtureWithConfig(t, keyedConfig(keys), memory.New())
	tests := []struct {
		name         string
		method, path string
		body         string
		wantStatus   int
	}{
		{"200", "GET", "/v1/rubrics/db-acid", "", 200},
		{"201", "POST", "/v1/evaluations", `{"rubric_id":"db-acid","answer":"All or nothing."}`, 201},
		{"400", "GET", "/v1/evaluations?limit=0", "", 400},
		{"403", "POST", "/v1/rubrics", `{}`, 403},
		{"404", "GET", "/v1/rubrics/nope", "", 404},
		{"413", "POST", "/v1/evaluations", `{"answer":"` + string(make([]byte, 17<<10)) + `"}`, 413},
		{"415", "POST", "/v1/evaluations", "", 415},
		{"422", "POST", "/v1/evaluations", `{"answer":" "}`, 422},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := f.send(tt.method, tt.path, tt.body, "Authorization", bearer(grade))
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %.200s", rec.Code, tt.wantStatus, rec.Body)
			}
			got, taken := rateHeadersOf(rec), i+1
			if got.limit != 100 || got.remaining != 100-taken || !near(got.reset, taken*1000) {
				t.Errorf("RateLimit-Limit, -Remaining, -Reset = %d, %d, %d; want 100, %d, %d",
					got.limit, got.remaining, got.reset, 100-taken, taken*1000)
			}
		})
	}
}

// TestRateLimitOpenAPI checks that an open API limits by client address,
// and that a client cannot pick a fresh address with X-Forwarded-For.
func TestRateLimitOpenAPI(t *testing.T) {
	cfg := testConfig()
	cfg.DefaultLimit = ratelimit.Limit{RPS: 0.001, Burst: 1}
	f := newFixtureWithConfig(t, cfg, memory.New())
	tests := []struct {
		name       string
		remoteAddr string
		forwarded  string
		wantStatus int
	}{
		{"first client", "192.0.2.1:1234", "", 200},
		{"first client again, another port", "192.0.2.1:5678", "", 429},
		{"first client posing as another", "192.0.2.1:1234", "198.51.100.7", 429},
		{"second client", "192.0.2.2:1234", "", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/v1/rubrics", nil)
			req.RemoteAddr = tt.remoteAddr
			if tt.forwarded != "" {
				req.Header.Set("X-Forwarded-For", tt.forwarded)
				req.Header.Set("X-Real-Ip", tt.forwarded)
			}
			rec := httptest.NewRecorder()
			f.handler.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d", rec.Code, tt.wantStatus)
			}
		})
	}
}
