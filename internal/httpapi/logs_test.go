package httpapi_test

import (
	"bufio"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/assay-dev/assay/internal/auth"
	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/memory"
)

// TestLogsCarryNoAnswersOrKeys sends requests carrying an answer with a
// unique marker and an API key, then scans every log line: neither may
// appear, and each request has one line with its id, route, status and
// duration.
func TestLogsCarryNoAnswersOrKeys(t *testing.T) {
	const marker = "zqxmarker7731"
	var logs lockedBuffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	keys := memory.NewKeys()
	_, token := newKey(t, keys, nil, auth.ScopeGrade)
	secret := strings.SplitN(token, "_", 3)[2]
	_, adminToken := newKey(t, keys, nil, auth.ScopeAdmin)
	// A grading that quotes the answer at the wrong offsets.
	var misquoted evaluation.Grading
	for _, id := range []string{"properties", "isolation", "practice", "beyond-one-node"} {
		misquoted.Criteria = append(misquoted.Criteria, evaluation.CriterionResult{ID: id, Level: 2,
			Evidence: []evaluation.Evidence{{Quote: "Atomicity " + marker, Start: 1, End: 24}}})
	}
	h := newServer(t, keyedConfig(keys), memory.New(), log,
		stubGrader{kind: "broken"}, // an invalid grading: a 502, logged with its cause
		stubGrader{kind: "misquotes", grading: misquoted},
		stubGrader{kind: "down", err: errGraderDown},
	)

	answer := "Atomicity " + marker + " means all or nothing; a failed transaction is rolled back."
	tests := []struct {
		name         string
		method, path string
		body         string
		kv           []string
		wantStatus   int
		wantRoute    string
	}{
		{"graded", "POST", "/v1/evaluations", jsonBody(t, map[string]any{"rubric_id": "db-acid", "answer": answer, "candidate_ref": marker, "metadata": map[string]string{marker: marker}}),
			[]string{"Authorization", bearer(token), "Idempotency-Key", marker}, 201, "/v1/evaluations"},
		{"replayed", "POST", "/v1/evaluations", jsonBody(t, map[string]any{"rubric_id": "db-acid", "answer": answer, "candidate_ref": marker, "metadata": map[string]string{marker: marker}}),
			[]string{"Authorization", bearer(token), "Idempotency-Key", marker}, 201, "/v1/evaluations"},
		{"answer too long", "POST", "/v1/evaluations", jsonBody(t, map[string]any{"answer": strings.Repeat(marker+" ", 200)}), []string{"Authorization", bearer(token)}, 422, "/v1/evaluations"},
		{"malformed", "POST", "/v1/evaluations", `{"answer":"` + marker, []string{"Authorization", bearer(token)}, 400, "/v1/evaluations"},
		{"unknown field named like the answer", "POST", "/v1/evaluations", `{"` + marker + `":1}`, []string{"Authorization", bearer(token)}, 400, "/v1/evaluations"},
		{"no matching rubric", "POST", "/v1/evaluations", jsonBody(t, map[string]any{"question": "Best pizza in Naples " + marker + "?", "answer": "Da Michele " + marker}),
			[]string{"Authorization", bearer(token)}, 422, "/v1/evaluations"},
		{"invalid grading", "POST", "/v1/evaluations", jsonBody(t, map[string]any{"rubric_id": "db-acid", "answer": answer, "grader": "broken"}), []string{"Authorization", bearer(token)}, 502, "/v1/evaluations"},
		{"grading quotes the answer at the wrong offsets", "POST", "/v1/evaluations", jsonBody(t, map[string]any{"rubric_id": "db-acid", "answer": answer, "grader": "misquotes"}),
			[]string{"Authorization", bearer(token)}, 502, "/v1/evaluations"},
		{"grader down", "POST", "/v1/evaluations", jsonBody(t, map[string]any{"rubric_id": "db-acid", "answer": answer, "grader": "down"}), []string{"Authorization", bearer(token)}, 503, "/v1/evaluations"},
		{"marker in the query", "GET", "/v1/evaluations?candidate_ref=" + marker, "", []string{"Authorization", bearer(token)}, 200, "/v1/evaluations"},
		{"marker in the path", "GET", "/v1/evaluations/" + marker, "", []string{"Authorization", bearer(token)}, 404, "/v1/evaluations/:id"},
		{"search for the marker", "GET", "/v1/rubrics/search?q=" + marker, "", []string{"Authorization", bearer(adminToken)}, 200, "/v1/rubrics/search"},
		{"bad key", "GET", "/v1/evaluations", "", []string{"Authorization", "Bearer assay_" + marker + "_" + secret}, 401, "/v1/evaluations"},
		{"unknown route", "GET", "/v1/" + marker, "", []string{"Authorization", bearer(token)}, 404, "unmatched"},
		{"marker as request id", "GET", "/healthz", "", []string{"X-Request-Id", "bad id " + marker}, 200, "/healthz"},
	}
	// Leaks found and not yet fixed, by case name. Each case is skipped
	// until its entry is removed.
	knownLeaks := map[string]string{}
	type line struct {
		Msg        string   `json:"msg"`
		Method     string   `json:"method"`
		Route      *string  `json:"route"`
		Status     *int     `json:"status"`
		DurationMS *float64 `json:"duration_ms"`
		RequestID  string   `json:"request_id"`
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if why, ok := knownLeaks[tt.name]; ok {
				t.Skip("known leak: " + why)
			}
			start := len(logs.String())
			rec := send(t, h, tt.method, tt.path, tt.body, tt.kv...)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %.300s", rec.Code, tt.wantStatus, rec.Body)
			}
			var requests []line
			sc := bufio.NewScanner(strings.NewReader(logs.String()[start:]))
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				text := sc.Text()
				for _, leak := range []string{marker, secret, token, adminToken} {
					if strings.Contains(text, leak) {
						t.Errorf("a log line holds %q: %s", leak, text)
					}
				}
				var l line
				if err := json.Unmarshal([]byte(text), &l); err != nil {
					t.Fatalf("a log line is not JSON: %v: %s", err, text)
				}
				if l.Msg == "request" {
					requests = append(requests, l)
				}
			}
			if len(requests) != 1 {
				t.Fatalf("%d request lines, want 1:\n%s", len(requests), logs.String()[start:])
			}
			l := requests[0]
			if l.Route == nil || *l.Route != tt.wantRoute || l.Status == nil || *l.Status != rec.Code || l.DurationMS == nil || *l.DurationMS < 0 || l.Method != tt.method {
				t.Errorf("request line %+v, want method %s, route %q, status %d and a duration_ms", l, tt.method, tt.wantRoute, rec.Code)
			}
			if got, want := l.RequestID, rec.Header().Get("X-Request-Id"); got == "" || got != want {
				t.Errorf("request_id = %q, want the X-Request-Id sent back, %q", got, want)
			}
		})
	}
	if t.Failed() {
		t.Logf("logs:\n%s", logs.String())
	}
}
