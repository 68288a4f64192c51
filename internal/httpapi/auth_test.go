package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/assay-dev/assay/internal/auth"
	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/memory"
)

const wwwAuthenticate = `Bearer realm="assay"`

func TestAuthentication(t *testing.T) {
	open := newFixtureWithConfig(t, testConfig(), memory.New())

	keys := memory.NewKeys()
	_, gradeToken := newKey(t, keys, nil, auth.ScopeGrade)
	_, adminToken := newKey(t, keys, nil, auth.ScopeAdmin)
	revoked, revokedToken := newKey(t, keys, nil, auth.ScopeGrade)
	if err := keys.RevokeKey(context.Background(), revoked.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	keyed := newFixtureWithConfig(t, keyedConfig(keys), memory.New())

	// A key that was never stored, and a stored key's id with another
	// key's secret.
	_, unknownToken, err := auth.Mint("never stored", []string{auth.ScopeAdmin}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	gradeID := strings.SplitN(gradeToken, "_", 3)[1]
	wrongSecret := "assay_" + gradeID + "_" + strings.SplitN(unknownToken, "_", 3)[2]

	cfg := testConfig()
	cfg.Auth = auth.NewAuthenticator(memory.NewKeys(), true) // ASSAY_REQUIRE_AUTH with no key at all
	required := newFixtureWithConfig(t, cfg, memory.New())

	grade := jsonBody(t, map[string]any{"rubric_id": "db-acid", "answer": "Atomicity means all or nothing."})
	const sameDetail = "the API key is missing, malformed, unknown or revoked"
	tests := []struct {
		name          string
		f             *fixture
		method, path  string
		body          string
		authorization string // sent when not empty
		wantStatus    int
		wantDetail    string // for 401s, when the detail is fixed
	}{
		{name: "open: list without a header", f: open, method: "GET", path: "/v1/evaluations", wantStatus: 200},
		{name: "open: grade without a header", f: open, method: "POST", path: "/v1/evaluations", body: grade, wantStatus: 201},
		{name: "open: write a rubric without a header", f: open, method: "DELETE", path: "/v1/rubrics/db-acid", wantStatus: 204},
		{name: "open: a header is ignored", f: open, method: "GET", path: "/v1/evaluations", authorization: "Bearer nonsense", wantStatus: 200},

		{name: "keyed: no header", f: keyed, method: "GET", path: "/v1/evaluations", wantStatus: 401},
		{name: "keyed: no header on POST", f: keyed, method: "POST", path: "/v1/evaluations", body: grade, wantStatus: 401},
		{name: "keyed: Basic scheme", f: keyed, method: "GET", path: "/v1/rubrics", authorization: "Basic dXNlcjpwYXNz", wantStatus: 401},
		{name: "keyed: bare token without scheme", f: keyed, method: "GET", path: "/v1/rubrics", authorization: gradeToken, wantStatus: 401},
		{name: "keyed: empty bearer", f: keyed, method: "GET", path: "/v1/rubrics", authorization: "Bearer ", wantStatus: 401},
		{name: "keyed: malformed key", f: keyed, method: "GET", path: "/v1/rubrics", authorization: "Bearer not-a-key", wantStatus: 401, wantDetail: sameDetail},
		{name: "keyed: wrong prefix", f: keyed, method: "GET", path: "/v1/rubrics", authorization: "Bearer sk_" + strings.TrimPrefix(gradeToken, "assay_"), wantStatus: 401, wantDetail: sameDetail},
		{name: "keyed: short id", f: keyed, method: "GET", path: "/v1/rubrics", authorization: "Bearer assay_abc_secret", wantStatus: 401, wantDetail: sameDetail},
		{name: "keyed: unknown key", f: keyed, method: "GET", path: "/v1/rubrics", authorization: bearer(unknownToken), wantStatus: 401, wantDetail: sameDetail},
		{name: "keyed: wrong secret", f: keyed, method: "GET", path: "/v1/rubrics", authorization: bearer(wrongSecret), wantStatus: 401, wantDetail: sameDetail},
		{name: "keyed: revoked key", f: keyed, method: "GET", path: "/v1/rubrics", authorization: bearer(revokedToken), wantStatus: 401, wantDetail: sameDetail},
		{name: "keyed: truncated key", f: keyed, method: "GET", path: "/v1/rubrics", authorization: bearer(gradeToken[:len(gradeToken)-1]), wantStatus: 401, wantDetail: sameDetail},
		{name: "keyed: grade key lists", f: keyed, method: "GET", path: "/v1/evaluations", authorization: bearer(gradeToken), wantStatus: 200},
		{name: "keyed: grade key grades", f: keyed, method: "POST", path: "/v1/evaluations", body: grade, authorization: bearer(gradeToken), wantStatus: 201},
		{name: "keyed: scheme in lower case", f: keyed, method: "GET", path: "/v1/rubrics", authorization: "bearer " + gradeToken, wantStatus: 200},
		{name: "keyed: admin key", f: keyed, method: "GET", path: "/v1/evaluations", authorization: bearer(adminToken), wantStatus: 200},
		{name: "keyed: health needs no key", f: keyed, method: "GET", path: "/healthz", wantStatus: 200},
		{name: "keyed: the document needs no key", f: keyed, method: "GET", path: "/v1/openapi.json", wantStatus: 200},

		{name: "required, no keys: no header", f: required, method: "GET", path: "/v1/evaluations", wantStatus: 401},
		{name: "required, no keys: any bearer", f: required, method: "POST", path: "/v1/evaluations", body: grade, authorization: "Bearer assay_000000000000_x", wantStatus: 401, wantDetail: sameDetail},
		{name: "required, no keys: health", f: required, method: "GET", path: "/readyz", wantStatus: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var kv []string
			if tt.authorization != "" {
				kv = []string{"Authorization", tt.authorization}
			}
			rec := tt.f.send(tt.method, tt.path, tt.body, kv...)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tt.wantStatus, rec.Body)
			}
			if tt.wantStatus != http.StatusUnauthorized {
				if got := rec.Header().Get("WWW-Authenticate"); got != "" {
					t.Errorf("WWW-Authenticate = %q on a %d, want none", got, rec.Code)
				}
				return
			}
			p := wantProblem(t, rec, http.StatusUnauthorized, "unauthorized")
			if got := rec.Header().Get("WWW-Authenticate"); got != wwwAuthenticate {
				t.Errorf("WWW-Authenticate = %q, want %q", got, wwwAuthenticate)
			}
			if tt.wantDetail != "" && p.Detail != tt.wantDetail {
				t.Errorf("detail = %q, want %q (the same for every bad key)", p.Detail, tt.wantDetail)
			}
			if secret := strings.TrimPrefix(tt.authorization, "Bearer "); len(secret) > 8 && strings.Contains(rec.Body.String(), secret) {
				t.Errorf("the problem repeats the key: %s", rec.Body)
			}
		})
	}
}

// TestScopes checks that only admin keys write rubrics, and that a refused
// write changes nothing.
func TestScopes(t *testing.T) {
	keys := memory.NewKeys()
	_, grade := newKey(t, keys, nil, auth.ScopeGrade)
	_, admin := newKey(t, keys, nil, auth.ScopeAdmin)
	f := newFixtureWithConfig(t, keyedConfig(keys), memory.New())

	// A new rubric: a copy of db-acid under another id.
	rec := f.send("GET", "/v1/rubrics/db-acid", "", "Authorization", bearer(admin))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET db-acid as admin: %d %s", rec.Code, rec.Body)
	}
	r := decode[map[string]any](t, rec)
	r["id"] = "scope-test"
	delete(r, "version")
	create := jsonBody(t, r)
	r["title"] = "ACID, revised"
	update := jsonBody(t, r)

	tests := []struct {
		name         string
		token        string
		method, path string
		body         string
		wantStatus   int
	}{
		{"grade key cannot create", grade, "POST", "/v1/rubrics", create, 403},
		{"grade key cannot create, even with a bad body", grade, "POST", "/v1/rubrics", `{`, 403},
		{"the refused create stored nothing", admin, "GET", "/v1/rubrics/scope-test", "", 404},
		{"admin creates", admin, "POST", "/v1/rubrics", create, 201},
		{"grade key cannot update", grade, "PUT", "/v1/rubrics/scope-test", update, 403},
		{"admin updates", admin, "PUT", "/v1/rubrics/scope-test", update, 200},
		{"grade key cannot archive", grade, "DELETE", "/v1/rubrics/scope-test", "", 403},
		{"grade key still reads it", grade, "GET", "/v1/rubrics/scope-test", "", 200},
		{"admin archives", admin, "DELETE", "/v1/rubrics/scope-test", "", 204},
		{"grade key lists rubrics", grade, "GET", "/v1/rubrics", "", 200},
		{"grade key searches rubrics", grade, "GET", "/v1/rubrics/search?q=acid", "", 200},
		{"grade key grades", grade, "POST", "/v1/evaluations", `{"rubric_id":"db-acid","answer":"All or nothing."}`, 201},
		{"admin grades", admin, "POST", "/v1/evaluations", `{"rubric_id":"db-acid","answer":"All or nothing."}`, 201},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := f.send(tt.method, tt.path, tt.body, "Authorization", bearer(tt.token))
			if tt.wantStatus == http.StatusForbidden {
				p := wantProblem(t, rec, http.StatusForbidden, "forbidden")
				if !strings.Contains(p.Detail, "admin") {
					t.Errorf("detail = %q, want it to name the missing admin scope", p.Detail)
				}
				return
			}
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tt.wantStatus, rec.Body)
			}
		})
	}
	t.Run("the refused update changed nothing", func(t *testing.T) {
		rec := f.send("GET", "/v1/rubrics/scope-test?version=2", "", "Authorization", bearer(admin))
		if got := decode[map[string]any](t, rec)["title"]; got != "ACID, revised" {
			t.Errorf("version 2 title = %v, want the admin's update", got)
		}
		if rec := f.send("GET", "/v1/rubrics/scope-test?version=3", "", "Authorization", bearer(admin)); rec.Code != http.StatusNotFound {
			t.Errorf("version 3: status %d, want 404 (no write by the grade key)", rec.Code)
		}
	})
}

// TestRubricViews checks that a grade key sees only what will be graded,
// and an admin (or the open API) everything.
func TestRubricViews(t *testing.T) {
	keys := memory.NewKeys()
	_, grade := newKey(t, keys, nil, auth.ScopeGrade)
	_, admin := newKey(t, keys, nil, auth.ScopeAdmin)
	f := newFixtureWithConfig(t, keyedConfig(keys), memory.New())
	open := newFixture(t)

	full := decode[map[string]any](t, f.send("GET", "/v1/rubrics/db-acid", "", "Authorization", bearer(admin)))
	reference, _ := full["reference_answer"].(string)
	crit0, _ := full["criteria"].([]any)[0].(map[string]any)
	level0 := crit0["levels"].([]any)[0].(string)
	kp0 := crit0["key_points"].([]any)[0].(map[string]any)
	term0 := kp0["terms"].([]any)[0].(string)
	if reference == "" || level0 == "" || term0 == "" {
		t.Fatalf("the admin view lacks the answer key: %v", full)
	}

	candidateKeys := []string{"aliases", "criteria", "id", "level", "question", "tags", "title", "version"}
	criterionKeys := []string{"description", "id", "name", "weight"}
	tests := []struct {
		name      string
		f         *fixture
		path      string
		token     string
		candidate bool
	}{
		{"grade key, latest", f, "/v1/rubrics/db-acid", grade, true},
		{"grade key, by version", f, "/v1/rubrics/db-acid?version=1", grade, true},
		{"admin key, latest", f, "/v1/rubrics/db-acid", admin, false},
		{"admin key, by version", f, "/v1/rubrics/db-acid?version=1", admin, false},
		{"open API", open, "/v1/rubrics/db-acid", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var kv []string
			if tt.token != "" {
				kv = []string{"Authorization", bearer(tt.token)}
			}
			rec := tt.f.send("GET", tt.path, "", kv...)
			if rec.Code != http.StatusOK {
				t.Fatalf("status = %d; body %s", rec.Code, rec.Body)
			}
			body := rec.Body.String()
			got := decode[map[string]any](t, rec)
			if !tt.candidate {
				if got["reference_answer"] != reference || !strings.Contains(body, level0) || !strings.Contains(body, jsonString(t, term0)) {
					t.Errorf("the full view lacks the reference answer, level descriptors or terms: %.300s", body)
				}
				return
			}
			if g, w := sortedKeys(got), candidateKeys; !slices.Equal(g, w) {
				t.Errorf("members = %v, want %v", g, w)
			}
			cs, _ := got["criteria"].([]any)
			if len(cs) != len(full["criteria"].([]any)) {
				t.Fatalf("%d criteria, want %d", len(cs), len(full["criteria"].([]any)))
			}
			for i, c := range cs {
				if g := sortedKeys(c.(map[string]any)); !slices.Equal(g, criterionKeys) {
					t.Errorf("criteria[%d] members = %v, want %v", i, g, criterionKeys)
				}
			}
			for _, secret := range []string{reference[:60], level0, jsonString(t, term0), "misconceptions", "follow_ups", "key_points", "signals"} {
				if strings.Contains(body, secret) {
					t.Errorf("the candidate's view contains %q", secret)
				}
			}
		})
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func jsonString(t *testing.T, s string) string {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestEvaluationOwnership checks that a grade key sees only its own
// evaluations and an admin key every one.
func TestEvaluationOwnership(t *testing.T) {
	keys := memory.NewKeys()
	keyA, tokenA := newKey(t, keys, nil, auth.ScopeGrade)
	keyB, tokenB := newKey(t, keys, nil, auth.ScopeGrade)
	_, admin := newKey(t, keys, nil, auth.ScopeAdmin)
	f := newFixtureWithConfig(t, keyedConfig(keys), memory.New())

	create := func(token, answer string) evaluation.Evaluation {
		t.Helper()
		rec := f.send("POST", "/v1/evaluations", jsonBody(t, map[string]any{"rubric_id": "db-acid", "answer": answer}), "Authorization", bearer(token))
		if rec.Code != http.StatusCreated {
			t.Fatalf("POST: %d %s", rec.Code, rec.Body)
		}
		return decode[evaluation.Evaluation](t, rec)
	}
	a := create(tokenA, "Atomicity means all or nothing: a failed transaction is rolled back.")
	b := create(tokenB, "Durability means a committed write survives a crash.")
	if a.APIKeyID != keyA.ID || b.APIKeyID != keyB.ID {
		t.Fatalf("api_key_id = %q and %q, want %q and %q", a.APIKeyID, b.APIKeyID, keyA.ID, keyB.ID)
	}

	gets := []struct {
		name       string
		token, id  string
		wantStatus int
	}{
		{"A reads its own", tokenA, a.ID, 200},
		{"A cannot read B's", tokenA, b.ID, 404},
		{"B cannot read A's", tokenB, a.ID, 404},
		{"B reads its own", tokenB, b.ID, 200},
		{"admin reads A's", admin, a.ID, 200},
		{"admin reads B's", admin, b.ID, 200},
	}
	for _, tt := range gets {
		t.Run(tt.name, func(t *testing.T) {
			rec := f.send("GET", "/v1/evaluations/"+tt.id, "", "Authorization", bearer(tt.token))
			if tt.wantStatus == http.StatusNotFound {
				wantProblem(t, rec, http.StatusNotFound, "not-found")
				// Indistinguishable from an id that does not exist.
				other := f.send("GET", "/v1/evaluations/0190f0e0-0000-7000-8000-000000000000", "", "Authorization", bearer(tt.token))
				if g, w := decode[problem](t, rec).Title, decode[problem](t, other).Title; g != w {
					t.Errorf("title %q differs from an unknown id's %q", g, w)
				}
				return
			}
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tt.wantStatus, rec.Body)
			}
			if got := decode[evaluation.Evaluation](t, rec).ID; got != tt.id {
				t.Errorf("id = %s, want %s", got, tt.id)
			}
		})
	}

	lists := []struct {
		name  string
		token string
		query string
		want  []string // ids, newest first
	}{
		{"A lists its own", tokenA, "", []string{a.ID}},
		{"B lists its own", tokenB, "", []string{b.ID}},
		{"B filters by A's rubric", tokenB, "?rubric_id=db-acid", []string{b.ID}},
		{"admin lists all", admin, "", []string{b.ID, a.ID}},
	}
	for _, tt := range lists {
		t.Run(tt.name, func(t *testing.T) {
			rec := f.send("GET", "/v1/evaluations"+tt.query, "", "Authorization", bearer(tt.token))
			if rec.Code != http.StatusOK {
				t.Fatalf("status = %d; body %s", rec.Code, rec.Body)
			}
			var got []string
			for _, e := range decode[struct {
				Items []evaluation.Evaluation `json:"items"`
			}](t, rec).Items {
				got = append(got, e.ID)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("listed %v, want %v", got, tt.want)
			}
		})
	}
}
