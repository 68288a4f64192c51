package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/assay-dev/assay/internal/auth"
	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/fault"
	"github.com/assay-dev/assay/internal/memory"
	"github.com/assay-dev/assay/internal/ratelimit"
	"github.com/assay-dev/assay/internal/rubric"
)

const problemBase = "https://github.com/assay-dev/assay/blob/main/docs/problems.md#"

func init() {
	// kin-openapi has no decoder for Server-Sent Events: read the stream as
	// text, to check against its string schema (the conformance test checks
	// each event's data against the Evaluation schema itself).
	openapi3filter.RegisterBodyDecoder("text/event-stream", openapi3filter.PlainBodyDecoder)
}

// spec is the OpenAPI document as the server serves it, validated, with a
// router over its paths.
type spec struct {
	doc    *openapi3.T
	router routers.Router
}

// loadSpec fetches GET /openapi.yaml through the router, checks that it is
// the file in this directory, and loads and validates it.
func loadSpec(t *testing.T, f *fixture) *spec {
	t.Helper()
	rec := f.do(http.MethodGet, "/openapi.yaml", "", "")
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /openapi.yaml: status = %d, want 200", rec.Code)
	}
	file, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rec.Body.Bytes(), file) {
		t.Fatal("GET /openapi.yaml does not serve openapi.yaml")
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(rec.Body.Bytes())
	if err != nil {
		t.Fatalf("loading openapi.yaml: %v", err)
	}
	if err := doc.Validate(loader.Context, openapi3.EnableExamplesValidation()); err != nil {
		t.Fatalf("openapi.yaml is not a valid OpenAPI document: %v", err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatalf("routing openapi.yaml: %v", err)
	}
	return &spec{doc: doc, router: router}
}

var filterOptions = &openapi3filter.Options{
	// A status the document does not list for the operation is a mismatch.
	IncludeResponseStatus: true,
	MultiError:            true,
	// The document's one security scheme: a request satisfies it when it
	// carries a bearer token. Whether the token is valid is the server's
	// business (an open server ignores it).
	AuthenticationFunc: func(_ context.Context, in *openapi3filter.AuthenticationInput) error {
		if in.SecuritySchemeName != "bearerAuth" {
			return fmt.Errorf("unknown security scheme %q", in.SecuritySchemeName)
		}
		scheme, token, ok := strings.Cut(in.RequestValidationInput.Request.Header.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
			return errors.New("no bearer token in Authorization")
		}
		return nil
	},
}

// checkRequest validates a request built from method, path, contentType
// and body against the document. It returns the route (nil when the
// document has no operation for the request) and the validation error.
func (s *spec) checkRequest(t *testing.T, method, path, contentType, body string, header http.Header) (*openapi3filter.RequestValidationInput, error) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	route, params, err := s.router.FindRoute(req)
	if err != nil {
		return nil, err
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: filterOptions}
	return in, openapi3filter.ValidateRequest(context.Background(), in)
}

// checkResponse validates a recorded response against the operation of in.
func (s *spec) checkResponse(in *openapi3filter.RequestValidationInput, rec *httptest.ResponseRecorder) error {
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 rec.Code,
		Header:                 rec.Header(),
		Options:                filterOptions,
	}
	out.SetBodyBytes(rec.Body.Bytes())
	return openapi3filter.ValidateResponse(context.Background(), out)
}

// checkProblem validates a response that no operation describes (an
// unknown path, a method a path lacks) against a component schema.
func (s *spec) checkProblem(rec *httptest.ResponseRecorder, schema string) error {
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		return errors.New("Content-Type is " + ct + ", want application/problem+json")
	}
	if rec.Header().Get("X-Request-Id") == "" {
		return errors.New("no X-Request-Id header")
	}
	ref := s.doc.Components.Schemas[schema]
	if ref == nil {
		return errors.New("no component schema " + schema)
	}
	var v any
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		return err
	}
	return ref.Value.VisitJSON(v, openapi3.EnableJSONSchema2020(), openapi3.MultiErrors())
}

// stubGrader fails in a chosen way.
type stubGrader struct {
	kind    string
	grading evaluation.Grading
	err     error
}

func (g stubGrader) Kind() string { return g.kind }

func (g stubGrader) Grade(context.Context, evaluation.GradeInput) (evaluation.Grading, error) {
	return g.grading, g.err
}

// errStore is a memory store that fails every call a request makes with
// err; the calls that load the bank at start work.
type errStore struct {
	*memory.Store
	err error
}

var errDiskOnFire = errors.New("disk on fire")

// unavailable is how a store reports that its database is down.
var unavailable = fault.Wrap(errDiskOnFire, fault.Unavailable, "the database is unavailable; retry later")

func (s errStore) Ping(context.Context) error { return s.err }
func (s errStore) Rubric(context.Context, string) (rubric.Rubric, error) {
	return rubric.Rubric{}, s.err
}
func (s errStore) RubricVersion(context.Context, string, int) (rubric.Rubric, error) {
	return rubric.Rubric{}, s.err
}
func (s errStore) ListRubrics(context.Context, evaluation.RubricFilter) ([]rubric.Rubric, error) {
	return nil, s.err
}
func (s errStore) CreateRubric(context.Context, rubric.Rubric) (rubric.Rubric, error) {
	return rubric.Rubric{}, s.err
}
func (s errStore) UpdateRubric(context.Context, rubric.Rubric) (rubric.Rubric, error) {
	return rubric.Rubric{}, s.err
}
func (s errStore) ArchiveRubric(context.Context, string) error { return s.err }
func (s errStore) SearchRubrics(context.Context, string, []float32, int) ([]evaluation.Match, error) {
	return nil, s.err
}
func (s errStore) CreateEvaluation(context.Context, evaluation.Evaluation) error { return s.err }
func (s errStore) Evaluation(context.Context, string) (evaluation.Evaluation, error) {
	return evaluation.Evaluation{}, s.err
}
func (s errStore) ListEvaluations(context.Context, evaluation.EvaluationFilter) ([]evaluation.Evaluation, error) {
	return nil, s.err
}
func (s errStore) CreateQueued(context.Context, *evaluation.Batch, []evaluation.Evaluation) error {
	return s.err
}
func (s errStore) Batch(context.Context, string) (evaluation.Batch, error) {
	return evaluation.Batch{}, s.err
}
func (s errStore) BatchEvaluations(context.Context, string) ([]evaluation.Evaluation, error) {
	return nil, s.err
}

// rubricBody returns the bank rubric id as a JSON body, changed by edit.
func rubricBody(t *testing.T, f *fixture, id string, edit func(r map[string]any)) string {
	t.Helper()
	rec := f.do(http.MethodGet, "/v1/rubrics/"+id, "", "")
	if rec.Code != http.StatusOK {
		t.Fatalf("GET rubric %s: %d %s", id, rec.Code, rec.Body)
	}
	r := decode[map[string]any](t, rec)
	edit(r)
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestOpenAPIDocument(t *testing.T) {
	s := loadSpec(t, newFixture(t))
	if got, want := s.doc.OpenAPI, "3.1.0"; got != want {
		t.Errorf("openapi = %q, want %q", got, want)
	}
	if !s.doc.IsOpenAPI31OrLater() {
		t.Error("the document is not read as OpenAPI 3.1")
	}
	// Every route of the server, and nothing else.
	want := map[string][]string{
		"/healthz":                    {"GET"},
		"/readyz":                     {"GET"},
		"/openapi.yaml":               {"GET"},
		"/v1/openapi.json":            {"GET"},
		"/metrics":                    {"GET"},
		"/v1/evaluations":             {"GET", "POST"},
		"/v1/evaluations/{id}":        {"GET"},
		"/v1/evaluations/batch":       {"POST"},
		"/v1/evaluations/{id}/events": {"GET"},
		"/v1/batches/{id}":            {"GET"},
		"/v1/rubrics":                 {"GET", "POST"},
		"/v1/rubrics/search":          {"GET"},
		"/v1/rubrics/{id}":            {"DELETE", "GET", "PUT"},
		"/v1/rubrics/{id}/regrade":    {"POST"},
		"/v1/regrades/{id}":           {"GET"},
	}
	got := map[string][]string{}
	for path, item := range s.doc.Paths.Map() {
		for _, m := range []string{"DELETE", "GET", "PATCH", "POST", "PUT"} {
			if item.GetOperation(m) != nil {
				got[path] = append(got[path], m)
			}
		}
	}
	if g, w := mustJSON(t, got), mustJSON(t, want); g != w {
		t.Errorf("paths and methods:\ngot  %s\nwant %s", g, w)
	}
	for _, name := range []string{"Evaluation", "RubricRef", "Score", "CriterionResult", "Evidence", "KeyPointResult",
		"MisconceptionFound", "FollowUp", "GraderInfo", "Usage", "Rubric", "RubricSummary", "EvaluationPage",
		"RubricPage", "SearchResult", "Problem", "CreateEvaluationRequest", "InlineRubric", "PublicRubric",
		"UnauthorizedProblem", "ForbiddenProblem", "RateLimitedProblem", "ConflictProblem", "IdempotencyKeyReusedProblem",
		"FollowUpRef", "FollowUpLink", "RegradeLink", "EvaluationError", "BatchRequest", "Batch", "BatchSummary", "BatchItem",
		"RegradeReport", "RegradeItem", "ChangeStats"} {
		if s.doc.Components.Schemas[name] == nil {
			t.Errorf("no component schema %s", name)
		}
	}
	// The response schemas name exactly the fields the Go types marshal, so
	// that no field is returned undocumented (they allow other properties,
	// which the conformance test alone would not notice).
	for _, tc := range []struct {
		schema string
		typ    reflect.Type
	}{
		{"Evaluation", reflect.TypeFor[evaluation.Evaluation]()},
		{"RubricRef", reflect.TypeFor[evaluation.RubricRef]()},
		{"Score", reflect.TypeFor[evaluation.Score]()},
		{"CriterionResult", reflect.TypeFor[evaluation.CriterionResult]()},
		{"Evidence", reflect.TypeFor[evaluation.Evidence]()},
		{"KeyPointResult", reflect.TypeFor[evaluation.KeyPointResult]()},
		{"MisconceptionFound", reflect.TypeFor[evaluation.MisconceptionFound]()},
		{"FollowUp", reflect.TypeFor[evaluation.FollowUp]()},
		{"GraderInfo", reflect.TypeFor[evaluation.GraderInfo]()},
		{"Usage", reflect.TypeFor[evaluation.Usage]()},
		{"FollowUpLink", reflect.TypeFor[evaluation.FollowUpLink]()},
		{"RegradeLink", reflect.TypeFor[evaluation.RegradeLink]()},
		{"EvaluationError", reflect.TypeFor[evaluation.Problem]()},
		{"BatchSummary", reflect.TypeFor[evaluation.Batch]()},
		{"RegradeReport", reflect.TypeFor[evaluation.RegradeReport]()},
		{"RegradeItem", reflect.TypeFor[evaluation.RegradeItem]()},
		{"ChangeStats", reflect.TypeFor[evaluation.ChangeStats]()},
	} {
		ref := s.doc.Components.Schemas[tc.schema]
		if ref == nil {
			continue
		}
		if got, want := mustJSON(t, schemaProperties(ref.Value)), mustJSON(t, jsonFields(tc.typ)); got != want {
			t.Errorf("schema %s has properties %s; %s marshals %s", tc.schema, got, tc.typ, want)
		}
	}
	if stats := s.doc.Components.Schemas["ChangeStats"]; stats != nil {
		bucket := stats.Value.Properties["histogram"].Value.Items.Value
		if got, want := mustJSON(t, schemaProperties(bucket)), mustJSON(t, jsonFields(reflect.TypeFor[evaluation.Bucket]())); got != want {
			t.Errorf("histogram buckets have properties %s; evaluation.Bucket marshals %s", got, want)
		}
	}
	// Every /v1 operation needs a bearer key and says so, with its 401 and
	// 429; the documents, health checks and metrics need none.
	if ss := s.doc.Components.SecuritySchemes["bearerAuth"]; ss == nil || ss.Value.Type != "http" || ss.Value.Scheme != "bearer" {
		t.Fatal("no http bearer security scheme bearerAuth")
	}
	for path, item := range s.doc.Paths.Map() {
		for method, op := range item.Operations() {
			security := s.doc.Security
			if op.Security != nil {
				security = *op.Security
			}
			protected := strings.HasPrefix(path, "/v1/") && path != "/v1/openapi.json"
			if got := len(security) == 1 && security[0]["bearerAuth"] != nil; got != protected {
				t.Errorf("%s %s: security %v, want bearerAuth: %v", method, path, security, protected)
			}
			if !protected && len(security) != 0 {
				t.Errorf("%s %s: security %v, want none", method, path, security)
			}
			for _, code := range []string{"401", "429"} {
				if got := op.Responses.Value(code) != nil; got != protected {
					t.Errorf("%s %s: response %s documented = %v, want %v", method, path, code, got, protected)
				}
			}
		}
	}
}

// schemaProperties returns the names of a schema's properties, its allOf
// parts' included.
func schemaProperties(s *openapi3.Schema) map[string]bool {
	out := map[string]bool{}
	for name := range s.Properties {
		out[name] = true
	}
	for _, sub := range s.AllOf {
		for name := range schemaProperties(sub.Value) {
			out[name] = true
		}
	}
	return out
}

// jsonFields returns the names encoding/json gives the fields of a struct
// type, its embedded structs' included.
func jsonFields(t reflect.Type) map[string]bool {
	out := map[string]bool{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case !f.IsExported() || name == "-":
		case f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct:
			for n := range jsonFields(f.Type) {
				out[n] = true
			}
		case name == "":
			out[f.Name] = true
		default:
			out[name] = true
		}
	}
	return out
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestOpenAPIConformance drives requests through the real router and checks
// each request and response against the document: the document must
// accept every request the server accepts (and reject the malformed ones it
// can describe), and describe every response exactly, status included.
func TestOpenAPIConformance(t *testing.T) {
	// The servers grade asynchronously too, as cmd/api's always do. The
	// main one checks callback URLs with the real rules (hooks.example.com
	// is public, intranet.example.com private) and has a grader that holds
	// a grading until released.
	gated := newBlockingGrader("gated")
	main := newAsyncFixture(t, testConfig(), memory.New(), asyncOptions{callbacks: newQuietCallbacks(t)}, gated)
	t.Cleanup(gated.Release)
	s := loadSpec(t, main)
	// A server whose database is down, one whose database fails in an
	// unexpected way, one whose grading queue is full, and one with graders
	// that fail.
	down := newAsyncFixture(t, testConfig(), errStore{memory.New(), unavailable}, asyncOptions{})
	broken := newAsyncFixture(t, testConfig(), errStore{memory.New(), errDiskOnFire}, asyncOptions{})
	full := newAsyncFixture(t, testConfig(), memory.New(), asyncOptions{queueLimit: 10,
		queue: func(q evaluation.Queue) evaluation.Queue { return fullQueue{q} }})
	graders := newFixtureWithGraders(t, memory.New(),
		stubGrader{kind: "flaky", err: &fault.Error{Kind: fault.Unavailable, Message: "the grading model is rate limited; retry later",
			RetryAfter: 30 * time.Second, Err: errDiskOnFire}},
		stubGrader{kind: "broken"}, // grades no criterion: an invalid grading
	)
	// A server with keys, where a grading is in flight under an
	// Idempotency-Key, and an open server whose one client has used up its
	// rate limit. Every request carries the admin key unless its row says
	// otherwise; the open servers ignore it.
	keys := memory.NewKeys()
	_, adminToken := newKey(t, keys, nil, auth.ScopeAdmin)
	_, gradeToken := newKey(t, keys, nil, auth.ScopeGrade)
	blocking := newBlockingGrader("blocking")
	keyed := newAsyncFixture(t, keyedConfig(keys), memory.New(), asyncOptions{}, blocking)
	inFlightBody := `{"rubric_id":"db-acid","answer":"Atomicity: all or nothing.","grader":"blocking"}`
	inFlight := make(chan *httptest.ResponseRecorder, 1)
	go func() {
		req := httptest.NewRequest("POST", "/v1/evaluations", strings.NewReader(inFlightBody))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", bearer(adminToken))
		req.Header.Set("Idempotency-Key", "in-flight")
		rec := httptest.NewRecorder()
		keyed.handler.ServeHTTP(rec, req)
		inFlight <- rec
	}()
	t.Cleanup(func() {
		blocking.Release()
		if rec := <-inFlight; rec.Code != http.StatusCreated {
			t.Errorf("the request in flight: %d %s", rec.Code, rec.Body)
		}
	})
	blocking.waitEntered(t)
	limitedCfg := testConfig()
	limitedCfg.DefaultLimit = ratelimit.Limit{RPS: 0.001, Burst: 1}
	limited := newAsyncFixture(t, limitedCfg, memory.New(), asyncOptions{})
	if rec := limited.do(http.MethodGet, "/v1/rubrics", "", ""); rec.Code != http.StatusOK {
		t.Fatalf("setup: using up the rate limit: %d", rec.Code)
	}
	// A server whose queue holds a batch under an Idempotency-Key.
	held := newHeldQueue()
	stalled := newAsyncFixture(t, testConfig(), memory.New(), asyncOptions{
		queue: func(q evaluation.Queue) evaluation.Queue { held.Queue = q; return held }})
	stalledBody := `{"items":[{"rubric_id":"db-acid","answer":"Atomicity: all or nothing."}]}`
	stalledDone := make(chan *httptest.ResponseRecorder, 1)
	go func() {
		stalledDone <- send(t, stalled.handler, "POST", "/v1/evaluations/batch", stalledBody, "Idempotency-Key", "batch-in-flight")
	}()
	t.Cleanup(func() {
		close(held.release)
		if rec := <-stalledDone; rec.Code != http.StatusAccepted {
			t.Errorf("the batch in flight: %d %s", rec.Code, rec.Body)
		}
	})
	select {
	case <-held.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("setup: the batch never reached the queue")
	}

	// State the table refers to: an evaluation and a cursor.
	var evalID string
	for _, body := range []map[string]any{
		{"rubric_id": "db-acid", "answer": "Atomicity means all or nothing.", "candidate_ref": "cand-7"},
		{"question": rateLimitQuestion, "answer": rateLimitAnswer, "metadata": map[string]string{"source": "test"}},
	} {
		rec := main.post(body)
		if rec.Code != http.StatusCreated {
			t.Fatalf("setup: POST /v1/evaluations = %d %s", rec.Code, rec.Body)
		}
		evalID = decode[evaluation.Evaluation](t, rec).ID
	}
	evalCursor := decode[struct {
		NextCursor string `json:"next_cursor"`
	}](t, main.do(http.MethodGet, "/v1/evaluations?limit=1", "", "")).NextCursor
	rubricCursor := decode[struct {
		NextCursor string `json:"next_cursor"`
	}](t, main.do(http.MethodGet, "/v1/rubrics?limit=3", "", "")).NextCursor
	if evalCursor == "" || rubricCursor == "" {
		t.Fatal("setup: no next_cursor")
	}

	// Asynchronous state: a queued evaluation graded to completion, one
	// that failed (its rubric id is unknown, which only grading finds), one
	// held while being graded, a completed batch, a completed regrade, and
	// a batch of the admin key on the server with keys.
	queue := func(body string) string {
		t.Helper()
		rec := main.send("POST", "/v1/evaluations", body, "Prefer", "respond-async")
		if rec.Code != http.StatusAccepted {
			t.Fatalf("setup: queueing %s: %d %s", body, rec.Code, rec.Body)
		}
		return decode[evaluation.Evaluation](t, rec).ID
	}
	doneID := queue(`{"rubric_id":"db-acid","answer":"Atomicity means a transaction is all or nothing.","candidate_ref":"cand-async"}`)
	failedID := queue(`{"rubric_id":"no-such-rubric","answer":"Atomicity: all or nothing."}`)
	heldID := queue(`{"rubric_id":"db-acid","answer":"Isolation keeps concurrent transactions apart.","grader":"gated"}`)
	gated.waitEntered(t)
	main.waitFor(doneID, evaluation.StatusCompleted)
	if e := main.waitFor(failedID, evaluation.StatusFailed); e.Error == nil || e.Error.Type != problemBase+"invalid-field" {
		t.Fatalf("setup: the failed evaluation's error = %+v, want invalid-field", e.Error)
	}
	batchOf := func(f *fixture, token, body string) (string, []string) {
		t.Helper()
		var kv []string
		if token != "" {
			kv = []string{"Authorization", token}
		}
		rec := f.send("POST", "/v1/evaluations/batch", body, kv...)
		if rec.Code != http.StatusAccepted {
			t.Fatalf("setup: POST /v1/evaluations/batch: %d %s", rec.Code, rec.Body)
		}
		b := decode[struct {
			ID          string
			Evaluations []struct{ ID string }
		}](t, rec)
		var ids []string
		for _, e := range b.Evaluations {
			ids = append(ids, e.ID)
		}
		return b.ID, ids
	}
	batchID, batchEvals := batchOf(main, "", `{"items":[{"rubric_id":"db-acid","answer":"Durability: a committed transaction survives a crash."},`+
		`{"question":"`+rateLimitQuestion+`","answer":"`+rateLimitAnswer+`","callback_url":"https://hooks.example.com/assay"}]}`)
	for _, id := range batchEvals {
		main.waitFor(id, evaluation.StatusCompleted)
	}
	rec := main.send("POST", "/v1/rubrics/db-acid/regrade", "")
	if rec.Code != http.StatusAccepted {
		t.Fatalf("setup: POST regrade: %d %s", rec.Code, rec.Body)
	}
	report := decode[evaluation.RegradeReport](t, rec)
	regradeID := report.ID
	for deadline := time.Now().Add(10 * time.Second); report.Status != evaluation.StatusCompleted; {
		if time.Now().After(deadline) {
			t.Fatalf("setup: the regrade did not complete: %+v", report)
		}
		time.Sleep(5 * time.Millisecond)
		report = decode[evaluation.RegradeReport](t, main.do("GET", "/v1/regrades/"+regradeID, "", ""))
	}
	if len(report.Items) == 0 || report.Changes.Count != len(report.Items) {
		t.Fatalf("setup: regrade report %+v, want completed items", report)
	}
	regradedID := report.Items[0].EvaluationID
	keyedBatchID, _ := batchOf(keyed, bearer(adminToken), `{"items":[{"rubric_id":"db-acid","answer":"Atomicity: all or nothing."}]}`)
	const unknownID = "0190f0e0-0000-7000-8000-000000000000"

	copyOf := func(id string, edit func(map[string]any)) string {
		return rubricBody(t, main, "db-acid", func(r map[string]any) {
			r["id"] = id
			delete(r, "version")
			if edit != nil {
				edit(r)
			}
		})
	}
	newRubric := copyOf("db-acid-copy", nil)
	changed := copyOf("db-acid-copy", func(r map[string]any) { r["title"] = "ACID, revised" })
	noID := copyOf("db-acid-copy", func(r map[string]any) { delete(r, "id"); r["title"] = "ACID, again" })
	wrongID := copyOf("db-acid-other", nil)
	fewCriteria := copyOf("db-acid-few", func(r map[string]any) { r["criteria"] = r["criteria"].([]any)[:1] })
	dupCriteria := copyOf("db-acid-dup", func(r map[string]any) {
		cs := r["criteria"].([]any)
		cs[1].(map[string]any)["id"] = cs[0].(map[string]any)["id"]
	})
	badTerms := copyOf("db-acid-terms", func(r map[string]any) {
		kp := r["criteria"].([]any)[0].(map[string]any)["key_points"].([]any)[0].(map[string]any)
		kp["terms"] = []string{"Upper Case", "x", "y"}
	})
	noAliases := copyOf("db-acid-bare", func(r map[string]any) { delete(r, "aliases"); delete(r, "tags") })
	huge := `{"answer": "` + strings.Repeat("x", 17<<10) + `"}`
	hugeBatch := `{"items": [{"answer": "` + strings.Repeat("x", 17<<10) + `"}]}`
	batchOf101 := `{"items":[` + strings.Repeat(`{"answer":"a"},`, 100) + `{"answer":"a"}]}`
	twoItems := `{"items":[{"rubric_id":"db-acid","answer":"Consistency: constraints hold before and after."},` +
		`{"answer":"` + rateLimitAnswer + `","candidate_ref":"cand-b","callback_url":"https://hooks.example.com/assay"}]}`
	prefer := http.Header{"Prefer": {"respond-async"}}
	followUp := func(id string, index int, extra string) string {
		return `{"answer":"Each replica checks one shared counter in Redis with an atomic Lua script.","follow_up_of":{"evaluation_id":"` +
			id + `","index":` + strconv.Itoa(index) + `}` + extra + `}`
	}
	hugeRubric := `{"id": "big", "title": "` + strings.Repeat("x", 17<<10) + `"}`
	longQ := strings.Repeat("a", 8001)

	const noAuth = "-"
	inline := `{"question":"What does a mutex guarantee?","reference_answer":"A mutex gives mutual exclusion: only one thread at a time holds the lock and runs the critical section, so shared data is not corrupted. Other threads block until it is released."}`
	inlineCriteria := `{"question":"What does a mutex guarantee?","reference_answer":"Only one thread holds the lock at a time; the others block until it is released.",` +
		`"criteria":[{"id":"exclusion","name":"Mutual exclusion","weight":2,"description":"One holder at a time.","levels":["none","names it","explains it","with blocking","with fairness"]}]}`

	type routeKind int
	const (
		routed      routeKind = iota
		noPath                // 404 from the router: the document has no such path
		noOperation           // 405: the path exists, the method does not
	)
	type row struct {
		name        string
		f           *fixture // main unless set
		method      string
		path        string
		contentType string
		body        string
		header      http.Header
		auth        string // Authorization: the admin key when empty, none when noAuth
		wantStatus  int
		wantType    string // problem type slug, for problem responses
		// reqValid says whether the document accepts the request. Some
		// requests it accepts fail for reasons it cannot express (state,
		// configured limits).
		reqValid    bool
		route       routeKind
		wantHeaders map[string]string // headers the response must carry
		// wantEvents are the names of the Server-Sent Events of a stream,
		// in order; onStream, when set, sees the body after every write
		// while the stream is being written.
		wantEvents []string
		onStream   func(body string)
	}
	tests := []row{
		// Operations.
		{name: "healthz", method: "GET", path: "/healthz", wantStatus: 200, reqValid: true},
		{name: "readyz", method: "GET", path: "/readyz", wantStatus: 200, reqValid: true},
		{name: "readyz with the store down", f: down, method: "GET", path: "/readyz", wantStatus: 503, wantType: "unavailable", reqValid: true},
		{name: "readyz with the store failing unexpectedly", f: broken, method: "GET", path: "/readyz", wantStatus: 503, wantType: "unavailable", reqValid: true},
		{name: "openapi.yaml", method: "GET", path: "/openapi.yaml", wantStatus: 200, reqValid: true},
		{name: "openapi.json", method: "GET", path: "/v1/openapi.json", wantStatus: 200, reqValid: true},
		{name: "openapi.json needs no key", f: keyed, auth: noAuth, method: "GET", path: "/v1/openapi.json", wantStatus: 200, reqValid: true},
		{name: "metrics", method: "GET", path: "/metrics", wantStatus: 200, reqValid: true},
		{name: "metrics need no key", f: keyed, auth: noAuth, method: "GET", path: "/metrics", wantStatus: 200, reqValid: true},
		{name: "healthz needs no key", f: keyed, auth: noAuth, method: "GET", path: "/healthz", wantStatus: 200, reqValid: true},
		{name: "request id is echoed", method: "GET", path: "/healthz", header: http.Header{"X-Request-Id": {"req-42"}}, wantStatus: 200, reqValid: true},

		// POST /v1/evaluations.
		{name: "grade by question", method: "POST", path: "/v1/evaluations", contentType: "application/json",
			body:       `{"question":"` + rateLimitQuestion + `","answer":"` + rateLimitAnswer + `","candidate_ref":"c1","metadata":{"k":"v"},"grader":"heuristic","samples":0}`,
			wantStatus: 201, reqValid: true},
		{name: "grade by rubric id", method: "POST", path: "/v1/evaluations", contentType: "application/json",
			body: `{"rubric_id":"db-acid","answer":"Atomicity: all or nothing."}`, wantStatus: 201, reqValid: true},
		{name: "grade by answer", method: "POST", path: "/v1/evaluations", contentType: "application/json; charset=utf-8",
			body: `{"answer":"` + rateLimitAnswer + `"}`, wantStatus: 201, reqValid: true},
		{name: "flags on a keyword list", method: "POST", path: "/v1/evaluations", contentType: "application/json",
			body: `{"rubric_id":"api-rate-limiting","answer":"token bucket, redis, 429, retry-after, sliding window"}`, wantStatus: 201, reqValid: true},
		{name: "malformed JSON", method: "POST", path: "/v1/evaluations", contentType: "application/json", body: `{"answer": `, wantStatus: 400, wantType: "malformed-request"},
		{name: "empty body", method: "POST", path: "/v1/evaluations", contentType: "application/json", body: ``, wantStatus: 400, wantType: "malformed-request"},
		{name: "not an object", method: "POST", path: "/v1/evaluations", contentType: "application/json", body: `[1,2]`, wantStatus: 400, wantType: "malformed-request"},
		// kin-openapi reads only the first JSON value of a body.
		{name: "two values", method: "POST", path: "/v1/evaluations", contentType: "application/json", body: `{"answer":"a"} {}`, wantStatus: 400, wantType: "malformed-request", reqValid: true},
		{name: "unknown field", method: "POST", path: "/v1/evaluations", contentType: "application/json", body: `{"answer":"a","score":100}`, wantStatus: 400, wantType: "malformed-request"},
		{name: "wrong type", method: "POST", path: "/v1/evaluations", contentType: "application/json", body: `{"answer":42}`, wantStatus: 400, wantType: "malformed-request"},
		{name: "body too large", method: "POST", path: "/v1/evaluations", contentType: "application/json", body: huge, wantStatus: 413, wantType: "too-large", reqValid: true},
		{name: "text/plain", method: "POST", path: "/v1/evaluations", contentType: "text/plain", body: `{"answer":"a"}`, wantStatus: 415, wantType: "unsupported-media-type"},
		{name: "no content type", method: "POST", path: "/v1/evaluations", body: `{"answer":"a"}`, wantStatus: 415, wantType: "unsupported-media-type"},
		{name: "missing answer", method: "POST", path: "/v1/evaluations", contentType: "application/json", body: `{"question":"What is ACID?"}`, wantStatus: 422, wantType: "invalid-field"},
		{name: "blank answer", method: "POST", path: "/v1/evaluations", contentType: "application/json", body: `{"answer":"  "}`, wantStatus: 422, wantType: "invalid-field"},
		{name: "answer over the configured limit", method: "POST", path: "/v1/evaluations", contentType: "application/json",
			body: `{"answer":"` + strings.Repeat("a", 2001) + `"}`, wantStatus: 422, wantType: "invalid-field", reqValid: true},
		{name: "question too long", method: "POST", path: "/v1/evaluations", contentType: "application/json",
			body: `{"answer":"a b","question":"` + strings.Repeat("q", 2001) + `"}`, wantStatus: 422, wantType: "invalid-field"},
		{name: "samples out of range", method: "POST", path: "/v1/evaluations", contentType: "application/json", body: `{"answer":"a b","samples":10}`, wantStatus: 422, wantType: "invalid-field"},
		{name: "metadata value too long", method: "POST", path: "/v1/evaluations", contentType: "application/json",
			body: `{"answer":"a b","metadata":{"k":"` + strings.Repeat("v", 513) + `"}}`, wantStatus: 422, wantType: "invalid-field"},
		{name: "unknown rubric id", method: "POST", path: "/v1/evaluations", contentType: "application/json", body: `{"answer":"a b c","rubric_id":"no-such-rubric"}`, wantStatus: 422, wantType: "invalid-field", reqValid: true},
		{name: "unknown grader", method: "POST", path: "/v1/evaluations", contentType: "application/json", body: `{"answer":"a b c","grader":"oracle"}`, wantStatus: 422, wantType: "invalid-field", reqValid: true},
		{name: "no matching rubric", method: "POST", path: "/v1/evaluations", contentType: "application/json",
			body: `{"question":"What is the best pizza place in Naples?","answer":"Da Michele."}`, wantStatus: 422, wantType: "no-matching-rubric", reqValid: true},
		{name: "no rubric matches the answer", method: "POST", path: "/v1/evaluations", contentType: "application/json",
			body: `{"answer":"Da Michele, on Via Cesare Sersale."}`, wantStatus: 422, wantType: "no-matching-rubric", reqValid: true},
		{name: "grader returns an invalid grading", f: graders, method: "POST", path: "/v1/evaluations", contentType: "application/json",
			body: `{"rubric_id":"db-acid","answer":"Atomicity: all or nothing.","grader":"broken"}`, wantStatus: 502, wantType: "grader-failed", reqValid: true},
		{name: "grader unavailable", f: graders, method: "POST", path: "/v1/evaluations", contentType: "application/json",
			body: `{"rubric_id":"db-acid","answer":"Atomicity: all or nothing.","grader":"flaky"}`, wantStatus: 503, wantType: "unavailable", reqValid: true,
			wantHeaders: map[string]string{"Retry-After": "30"}},
		{name: "grade with an inline rubric", method: "POST", path: "/v1/evaluations", contentType: "application/json",
			body: `{"rubric":` + inline + `,"answer":"Only one thread can hold a mutex; the others block until it is released, which prevents data races."}`, wantStatus: 201, reqValid: true},
		{name: "grade with inline criteria", method: "POST", path: "/v1/evaluations", contentType: "application/json",
			body: `{"rubric":` + inlineCriteria + `,"answer":"One thread holds the lock; the rest wait."}`, wantStatus: 201, reqValid: true},
		{name: "inline rubric without a reference answer", method: "POST", path: "/v1/evaluations", contentType: "application/json",
			body: `{"rubric":{"question":"What is a mutex?"},"answer":"A lock."}`, wantStatus: 422, wantType: "invalid-field"},
		{name: "inline rubric and rubric_id", method: "POST", path: "/v1/evaluations", contentType: "application/json",
			body: `{"rubric":` + inline + `,"rubric_id":"db-acid","answer":"A lock."}`, wantStatus: 422, wantType: "invalid-field"},
		{name: "grade afresh with Cache-Control: no-cache", method: "POST", path: "/v1/evaluations", contentType: "application/json",
			body: `{"rubric_id":"db-acid","answer":"Atomicity: all or nothing."}`, header: http.Header{"Cache-Control": {"no-cache"}}, wantStatus: 201, reqValid: true},
		{name: "grade with an Idempotency-Key", method: "POST", path: "/v1/evaluations", contentType: "application/json",
			body: `{"rubric_id":"db-acid","answer":"Durability: a commit survives a crash."}`, header: http.Header{"Idempotency-Key": {"conformance-1"}}, wantStatus: 201, reqValid: true},
		{name: "retry with the same Idempotency-Key replays", method: "POST", path: "/v1/evaluations", contentType: "application/json",
			body: `{"rubric_id":"db-acid","answer":"Durability: a commit survives a crash."}`, header: http.Header{"Idempotency-Key": {"conformance-1"}}, wantStatus: 201, reqValid: true,
			wantHeaders: map[string]string{"Idempotent-Replayed": "true"}},
		{name: "same Idempotency-Key, another body", method: "POST", path: "/v1/evaluations", contentType: "application/json",
			body: `{"rubric_id":"db-acid","answer":"Isolation."}`, header: http.Header{"Idempotency-Key": {"conformance-1"}}, wantStatus: 422, wantType: "invalid-field", reqValid: true},
		{name: "a replayed problem", method: "POST", path: "/v1/evaluations", contentType: "application/json",
			body: `{"answer":"  "}`, header: http.Header{"Idempotency-Key": {"conformance-2"}}, wantStatus: 422, wantType: "invalid-field"},
		{name: "a replayed problem, replayed", method: "POST", path: "/v1/evaluations", contentType: "application/json",
			body: `{"answer":"  "}`, header: http.Header{"Idempotency-Key": {"conformance-2"}}, wantStatus: 422, wantType: "invalid-field",
			wantHeaders: map[string]string{"Idempotent-Replayed": "true"}},
		{name: "Idempotency-Key too long", method: "POST", path: "/v1/evaluations", contentType: "application/json",
			body: `{"rubric_id":"db-acid","answer":"Atomicity."}`, header: http.Header{"Idempotency-Key": {strings.Repeat("k", 256)}}, wantStatus: 400, wantType: "invalid-parameter"},
		{name: "duplicate while the first is in flight", f: keyed, method: "POST", path: "/v1/evaluations", contentType: "application/json",
			body: inFlightBody, header: http.Header{"Idempotency-Key": {"in-flight"}}, wantStatus: 409, wantType: "conflict", reqValid: true},
		{name: "grade with a grade key", f: keyed, auth: bearer(gradeToken), method: "POST", path: "/v1/evaluations", contentType: "application/json",
			body: `{"rubric_id":"db-acid","answer":"Atomicity: all or nothing."}`, wantStatus: 201, reqValid: true},
		{name: "grade with a revoked or unknown key", f: keyed, auth: "Bearer assay_000000000000_nope", method: "POST", path: "/v1/evaluations", contentType: "application/json",
			body: `{"rubric_id":"db-acid","answer":"Atomicity: all or nothing."}`, wantStatus: 401, wantType: "unauthorized", reqValid: true,
			wantHeaders: map[string]string{"WWW-Authenticate": `Bearer realm="assay"`}},

		// GET /v1/evaluations and /v1/evaluations/{id}.
		{name: "list evaluations", method: "GET", path: "/v1/evaluations", wantStatus: 200, reqValid: true},
		{name: "list a page with a cursor", method: "GET", path: "/v1/evaluations?limit=1&cursor=" + evalCursor, wantStatus: 200, reqValid: true},
		{name: "list filtered", method: "GET", path: "/v1/evaluations?limit=100&rubric_id=db-acid&candidate_ref=cand-7", wantStatus: 200, reqValid: true},
		{name: "limit 0", method: "GET", path: "/v1/evaluations?limit=0", wantStatus: 400, wantType: "invalid-parameter"},
		{name: "limit 101", method: "GET", path: "/v1/evaluations?limit=101", wantStatus: 400, wantType: "invalid-parameter"},
		{name: "limit not a number", method: "GET", path: "/v1/evaluations?limit=ten", wantStatus: 400, wantType: "invalid-parameter"},
		{name: "bad cursor", method: "GET", path: "/v1/evaluations?cursor=%21%21", wantStatus: 400, wantType: "invalid-parameter", reqValid: true},
		{name: "rubric cursor for evaluations", method: "GET", path: "/v1/evaluations?cursor=" + rubricCursor, wantStatus: 400, wantType: "invalid-parameter", reqValid: true},
		{name: "list with the store failing", f: broken, method: "GET", path: "/v1/evaluations", wantStatus: 500, wantType: "internal", reqValid: true},
		{name: "list with the store down", f: down, method: "GET", path: "/v1/evaluations", wantStatus: 503, wantType: "unavailable", reqValid: true},
		{name: "get evaluation", method: "GET", path: "/v1/evaluations/" + evalID, wantStatus: 200, reqValid: true},
		{name: "unknown evaluation", method: "GET", path: "/v1/evaluations/0190f0e0-0000-7000-8000-000000000000", wantStatus: 404, wantType: "not-found", reqValid: true},
		{name: "malformed evaluation id", method: "GET", path: "/v1/evaluations/not-a-uuid", wantStatus: 404, wantType: "not-found", reqValid: true},
		{name: "get evaluation with the store down", f: down, method: "GET", path: "/v1/evaluations/" + evalID, wantStatus: 503, wantType: "unavailable", reqValid: true},
		{name: "get evaluation with the store failing", f: broken, method: "GET", path: "/v1/evaluations/" + evalID, wantStatus: 500, wantType: "internal", reqValid: true},
		{name: "grade with the store down", f: down, method: "POST", path: "/v1/evaluations", contentType: "application/json",
			body: `{"rubric_id":"db-acid","answer":"Atomicity: all or nothing."}`, wantStatus: 503, wantType: "unavailable", reqValid: true},
		{name: "grade with the store failing", f: broken, method: "POST", path: "/v1/evaluations", contentType: "application/json",
			body: `{"question":"What is ACID?","answer":"Atomicity: all or nothing."}`, wantStatus: 500, wantType: "internal", reqValid: true},

		// GET /v1/rubrics, /v1/rubrics/search and /v1/rubrics/{id}.
		{name: "list rubrics", method: "GET", path: "/v1/rubrics", wantStatus: 200, reqValid: true},
		{name: "list rubrics by tag with a cursor", method: "GET", path: "/v1/rubrics?limit=2&tag=api&cursor=" + rubricCursor, wantStatus: 200, reqValid: true},
		{name: "rubrics limit 101", method: "GET", path: "/v1/rubrics?limit=101", wantStatus: 400, wantType: "invalid-parameter"},
		{name: "rubrics bad cursor", method: "GET", path: "/v1/rubrics?cursor=" + evalCursor, wantStatus: 400, wantType: "invalid-parameter", reqValid: true},
		{name: "search", method: "GET", path: "/v1/rubrics/search?q=how+do+caches+go+stale&k=3", wantStatus: 200, reqValid: true},
		{name: "search with the default k", method: "GET", path: "/v1/rubrics/search?q=pizza", wantStatus: 200, reqValid: true},
		{name: "search without q", method: "GET", path: "/v1/rubrics/search", wantStatus: 400, wantType: "invalid-parameter"},
		{name: "search with blank q", method: "GET", path: "/v1/rubrics/search?q=%20%20", wantStatus: 400, wantType: "invalid-parameter"},
		{name: "search q too long", method: "GET", path: "/v1/rubrics/search?q=" + longQ, wantStatus: 400, wantType: "invalid-parameter"},
		{name: "search k 0", method: "GET", path: "/v1/rubrics/search?q=cache&k=0", wantStatus: 400, wantType: "invalid-parameter"},
		{name: "search k 21", method: "GET", path: "/v1/rubrics/search?q=cache&k=21", wantStatus: 400, wantType: "invalid-parameter"},
		{name: "get rubric", method: "GET", path: "/v1/rubrics/db-acid", wantStatus: 200, reqValid: true},
		{name: "get rubric version", method: "GET", path: "/v1/rubrics/db-acid?version=1", wantStatus: 200, reqValid: true},
		{name: "rubric version 0", method: "GET", path: "/v1/rubrics/db-acid?version=0", wantStatus: 400, wantType: "invalid-parameter"},
		{name: "rubric version x", method: "GET", path: "/v1/rubrics/db-acid?version=x", wantStatus: 400, wantType: "invalid-parameter"},
		{name: "unknown rubric", method: "GET", path: "/v1/rubrics/no-such-rubric", wantStatus: 404, wantType: "not-found", reqValid: true},
		{name: "unknown rubric version", method: "GET", path: "/v1/rubrics/db-acid?version=99", wantStatus: 404, wantType: "not-found", reqValid: true},

		// The life of a rubric: create, conflict, update, archive, revive.
		{name: "create rubric", method: "POST", path: "/v1/rubrics", contentType: "application/json", body: newRubric, wantStatus: 201, reqValid: true},
		{name: "create rubric without aliases or tags", method: "POST", path: "/v1/rubrics", contentType: "application/json", body: noAliases, wantStatus: 201, reqValid: true},
		{name: "get a rubric without aliases or tags", method: "GET", path: "/v1/rubrics/db-acid-bare", wantStatus: 200, reqValid: true},
		{name: "create an active id", method: "POST", path: "/v1/rubrics", contentType: "application/json", body: newRubric, wantStatus: 409, wantType: "conflict", reqValid: true},
		{name: "create with too few criteria", method: "POST", path: "/v1/rubrics", contentType: "application/json", body: fewCriteria, wantStatus: 422, wantType: "invalid-field"},
		{name: "create with duplicate criterion ids", method: "POST", path: "/v1/rubrics", contentType: "application/json", body: dupCriteria, wantStatus: 422, wantType: "invalid-field", reqValid: true},
		{name: "create with upper-case terms", method: "POST", path: "/v1/rubrics", contentType: "application/json", body: badTerms, wantStatus: 422, wantType: "invalid-field", reqValid: true},
		{name: "create an empty rubric", method: "POST", path: "/v1/rubrics", contentType: "application/json", body: `{"id":"x"}`, wantStatus: 422, wantType: "invalid-field"},
		{name: "create with a bad id", method: "POST", path: "/v1/rubrics", contentType: "application/json", body: strings.Replace(newRubric, `"db-acid-copy"`, `"Not A Slug"`, 1), wantStatus: 422, wantType: "invalid-field"},
		{name: "create with an unknown field", method: "POST", path: "/v1/rubrics", contentType: "application/json", body: `{"id":"x","answer":1}`, wantStatus: 400, wantType: "malformed-request"},
		{name: "create too large", method: "POST", path: "/v1/rubrics", contentType: "application/json", body: hugeRubric, wantStatus: 413, wantType: "too-large"},
		{name: "create as text", method: "POST", path: "/v1/rubrics", contentType: "text/plain", body: newRubric, wantStatus: 415, wantType: "unsupported-media-type"},
		{name: "update rubric", method: "PUT", path: "/v1/rubrics/db-acid-copy", contentType: "application/json", body: changed, wantStatus: 200, reqValid: true},
		{name: "update rubric without id", method: "PUT", path: "/v1/rubrics/db-acid-copy", contentType: "application/json", body: noID, wantStatus: 200, reqValid: true},
		{name: "update with another id", method: "PUT", path: "/v1/rubrics/db-acid-copy", contentType: "application/json", body: wrongID, wantStatus: 422, wantType: "invalid-field", reqValid: true},
		{name: "update with too few criteria", method: "PUT", path: "/v1/rubrics/db-acid-copy", contentType: "application/json", body: strings.Replace(fewCriteria, `"db-acid-few"`, `"db-acid-copy"`, 1), wantStatus: 422, wantType: "invalid-field"},
		{name: "update unknown rubric", method: "PUT", path: "/v1/rubrics/no-such-rubric", contentType: "application/json", body: copyOf("no-such-rubric", nil), wantStatus: 404, wantType: "not-found", reqValid: true},
		{name: "update malformed", method: "PUT", path: "/v1/rubrics/db-acid-copy", contentType: "application/json", body: `{"title": }`, wantStatus: 400, wantType: "malformed-request"},
		{name: "update as text", method: "PUT", path: "/v1/rubrics/db-acid-copy", contentType: "text/plain", body: changed, wantStatus: 415, wantType: "unsupported-media-type"},
		{name: "update too large", method: "PUT", path: "/v1/rubrics/db-acid-copy", contentType: "application/json", body: hugeRubric, wantStatus: 413, wantType: "too-large"},
		{name: "archive rubric", method: "DELETE", path: "/v1/rubrics/db-acid-copy", wantStatus: 204, reqValid: true},
		{name: "archive it again", method: "DELETE", path: "/v1/rubrics/db-acid-copy", wantStatus: 404, wantType: "not-found", reqValid: true},
		{name: "get archived rubric", method: "GET", path: "/v1/rubrics/db-acid-copy", wantStatus: 404, wantType: "not-found", reqValid: true},
		{name: "get archived version", method: "GET", path: "/v1/rubrics/db-acid-copy?version=2", wantStatus: 200, reqValid: true},
		{name: "update archived rubric", method: "PUT", path: "/v1/rubrics/db-acid-copy", contentType: "application/json", body: changed, wantStatus: 404, wantType: "not-found", reqValid: true},
		{name: "revive archived rubric", method: "POST", path: "/v1/rubrics", contentType: "application/json", body: newRubric, wantStatus: 201, reqValid: true},

		// The rubric operations with the database down or failing.
		{name: "list rubrics, store down", f: down, method: "GET", path: "/v1/rubrics", wantStatus: 503, wantType: "unavailable", reqValid: true},
		{name: "list rubrics, store failing", f: broken, method: "GET", path: "/v1/rubrics", wantStatus: 500, wantType: "internal", reqValid: true},
		{name: "search, store down", f: down, method: "GET", path: "/v1/rubrics/search?q=cache", wantStatus: 503, wantType: "unavailable", reqValid: true},
		{name: "search, store failing", f: broken, method: "GET", path: "/v1/rubrics/search?q=cache", wantStatus: 500, wantType: "internal", reqValid: true},
		{name: "get rubric, store down", f: down, method: "GET", path: "/v1/rubrics/db-acid", wantStatus: 503, wantType: "unavailable", reqValid: true},
		{name: "get rubric version, store failing", f: broken, method: "GET", path: "/v1/rubrics/db-acid?version=1", wantStatus: 500, wantType: "internal", reqValid: true},
		{name: "create rubric, store down", f: down, method: "POST", path: "/v1/rubrics", contentType: "application/json", body: newRubric, wantStatus: 503, wantType: "unavailable", reqValid: true},
		{name: "create rubric, store failing", f: broken, method: "POST", path: "/v1/rubrics", contentType: "application/json", body: newRubric, wantStatus: 500, wantType: "internal", reqValid: true},
		{name: "update rubric, store down", f: down, method: "PUT", path: "/v1/rubrics/db-acid-copy", contentType: "application/json", body: changed, wantStatus: 503, wantType: "unavailable", reqValid: true},
		{name: "update rubric, store failing", f: broken, method: "PUT", path: "/v1/rubrics/db-acid-copy", contentType: "application/json", body: changed, wantStatus: 500, wantType: "internal", reqValid: true},
		{name: "archive rubric, store down", f: down, method: "DELETE", path: "/v1/rubrics/db-acid", wantStatus: 503, wantType: "unavailable", reqValid: true},
		{name: "archive rubric, store failing", f: broken, method: "DELETE", path: "/v1/rubrics/db-acid", wantStatus: 500, wantType: "internal", reqValid: true},

		// A grade key's view of a rubric, and what it may not do.
		{name: "candidate's view of a rubric", f: keyed, auth: bearer(gradeToken), method: "GET", path: "/v1/rubrics/db-acid", wantStatus: 200, reqValid: true},
		{name: "candidate's view of a version", f: keyed, auth: bearer(gradeToken), method: "GET", path: "/v1/rubrics/db-acid?version=1", wantStatus: 200, reqValid: true},
		{name: "admin's view of a rubric", f: keyed, method: "GET", path: "/v1/rubrics/db-acid", wantStatus: 200, reqValid: true},
		{name: "grade key creates a rubric", f: keyed, auth: bearer(gradeToken), method: "POST", path: "/v1/rubrics", contentType: "application/json", body: newRubric, wantStatus: 403, wantType: "forbidden", reqValid: true},
		{name: "grade key updates a rubric", f: keyed, auth: bearer(gradeToken), method: "PUT", path: "/v1/rubrics/db-acid", contentType: "application/json",
			body: strings.Replace(changed, `"db-acid-copy"`, `"db-acid"`, 1), wantStatus: 403, wantType: "forbidden", reqValid: true},
		{name: "grade key archives a rubric", f: keyed, auth: bearer(gradeToken), method: "DELETE", path: "/v1/rubrics/db-acid", wantStatus: 403, wantType: "forbidden", reqValid: true},

		// Asynchronous grading: POST /v1/evaluations with Prefer:
		// respond-async and callbacks, and follow-up answers.
		{name: "queue a grading", method: "POST", path: "/v1/evaluations", contentType: "application/json", header: prefer,
			body: `{"question":"` + rateLimitQuestion + `","answer":"` + rateLimitAnswer + `","candidate_ref":"c2"}`, wantStatus: 202, reqValid: true,
			wantHeaders: map[string]string{"Preference-Applied": "respond-async"}},
		{name: "queue a grading among other preferences, with a callback", method: "POST", path: "/v1/evaluations", contentType: "application/json",
			header: http.Header{"Prefer": {"return=minimal, respond-async; wait=5"}},
			body:   `{"rubric_id":"db-acid","answer":"Atomicity: all or nothing.","callback_url":"https://hooks.example.com/assay?from=assay"}`, wantStatus: 202, reqValid: true,
			wantHeaders: map[string]string{"Preference-Applied": "respond-async"}},
		{name: "queue a grading whose rubric id is unknown", method: "POST", path: "/v1/evaluations", contentType: "application/json", header: prefer,
			body: `{"rubric_id":"no-such-rubric","answer":"a b c"}`, wantStatus: 202, reqValid: true},
		{name: "queue a grading with an invalid field", method: "POST", path: "/v1/evaluations", contentType: "application/json", header: prefer,
			body: `{"answer":"a b","samples":10}`, wantStatus: 422, wantType: "invalid-field"},
		{name: "queue a grading with an unknown grader", method: "POST", path: "/v1/evaluations", contentType: "application/json", header: prefer,
			body: `{"answer":"a b","grader":"oracle"}`, wantStatus: 422, wantType: "invalid-field", reqValid: true},
		{name: "callback to a loopback address", method: "POST", path: "/v1/evaluations", contentType: "application/json", header: prefer,
			body: `{"answer":"a b","callback_url":"http://127.0.0.1:8080/hook"}`, wantStatus: 422, wantType: "invalid-field", reqValid: true},
		{name: "callback to a host with a private address", method: "POST", path: "/v1/evaluations", contentType: "application/json", header: prefer,
			body: `{"answer":"a b","callback_url":"https://intranet.example.com/hook"}`, wantStatus: 422, wantType: "invalid-field", reqValid: true},
		{name: "callback to a host that does not resolve", method: "POST", path: "/v1/evaluations", contentType: "application/json", header: prefer,
			body: `{"answer":"a b","callback_url":"https://nowhere.example.com/hook"}`, wantStatus: 422, wantType: "invalid-field", reqValid: true},
		{name: "callback that is not http", method: "POST", path: "/v1/evaluations", contentType: "application/json", header: prefer,
			body: `{"answer":"a b","callback_url":"ftp://hooks.example.com/hook"}`, wantStatus: 422, wantType: "invalid-field", reqValid: true},
		{name: "callback without Prefer: respond-async", method: "POST", path: "/v1/evaluations", contentType: "application/json",
			body: `{"answer":"a b","callback_url":"https://hooks.example.com/assay"}`, wantStatus: 422, wantType: "invalid-field", reqValid: true},
		{name: "callback on a server without a webhook secret", f: full, method: "POST", path: "/v1/evaluations", contentType: "application/json", header: prefer,
			body: `{"answer":"a b","callback_url":"https://hooks.example.com/assay"}`, wantStatus: 422, wantType: "invalid-field", reqValid: true},
		{name: "queue a grading with the queue full", f: full, method: "POST", path: "/v1/evaluations", contentType: "application/json", header: prefer,
			body: `{"rubric_id":"db-acid","answer":"Atomicity: all or nothing."}`, wantStatus: 503, wantType: "unavailable", reqValid: true,
			wantHeaders: map[string]string{"Retry-After": "30"}},
		{name: "queue a grading with the store down", f: down, method: "POST", path: "/v1/evaluations", contentType: "application/json", header: prefer,
			body: `{"rubric_id":"db-acid","answer":"Atomicity: all or nothing."}`, wantStatus: 503, wantType: "unavailable", reqValid: true},
		{name: "answer a follow-up question", method: "POST", path: "/v1/evaluations", contentType: "application/json",
			body: followUp(evalID, 0, ""), wantStatus: 201, reqValid: true},
		{name: "queue the answer to a follow-up question", method: "POST", path: "/v1/evaluations", contentType: "application/json", header: prefer,
			body: followUp(evalID, 1, ""), wantStatus: 202, reqValid: true},
		{name: "follow-up index out of range", method: "POST", path: "/v1/evaluations", contentType: "application/json",
			body: followUp(evalID, 99, ""), wantStatus: 422, wantType: "invalid-field", reqValid: true},
		{name: "follow-up index negative", method: "POST", path: "/v1/evaluations", contentType: "application/json",
			body: followUp(evalID, -1, ""), wantStatus: 422, wantType: "invalid-field"},
		{name: "follow-up of an unknown evaluation", method: "POST", path: "/v1/evaluations", contentType: "application/json",
			body: followUp(unknownID, 0, ""), wantStatus: 422, wantType: "invalid-field", reqValid: true},
		{name: "follow-up with a rubric id", method: "POST", path: "/v1/evaluations", contentType: "application/json",
			body: followUp(evalID, 0, `,"rubric_id":"db-acid"`), wantStatus: 422, wantType: "invalid-field"},
		{name: "follow-up with an unknown field", method: "POST", path: "/v1/evaluations", contentType: "application/json",
			body: `{"answer":"a b","follow_up_of":{"evaluation_id":"` + evalID + `","question":"q"}}`, wantStatus: 400, wantType: "malformed-request"},

		// Evaluations of every kind, and their events.
		{name: "get a queued evaluation, completed", method: "GET", path: "/v1/evaluations/" + doneID, wantStatus: 200, reqValid: true},
		{name: "get a failed evaluation", method: "GET", path: "/v1/evaluations/" + failedID, wantStatus: 200, reqValid: true},
		{name: "get an evaluation being graded", method: "GET", path: "/v1/evaluations/" + heldID, wantStatus: 200, reqValid: true},
		{name: "get a batch's evaluation", method: "GET", path: "/v1/evaluations/" + batchEvals[1], wantStatus: 200, reqValid: true},
		{name: "get a regrade's evaluation", method: "GET", path: "/v1/evaluations/" + regradedID, wantStatus: 200, reqValid: true},
		{name: "list evaluations of every kind", method: "GET", path: "/v1/evaluations?limit=100", wantStatus: 200, reqValid: true},
		{name: "events of a completed evaluation", method: "GET", path: "/v1/evaluations/" + doneID + "/events", wantStatus: 200, reqValid: true,
			wantEvents: []string{"completed"}},
		{name: "events of a synchronous evaluation", method: "GET", path: "/v1/evaluations/" + evalID + "/events", wantStatus: 200, reqValid: true,
			wantEvents: []string{"completed"}},
		{name: "events of a failed evaluation", method: "GET", path: "/v1/evaluations/" + failedID + "/events", wantStatus: 200, reqValid: true,
			wantEvents: []string{"failed"}},
		// The grading is released once the stream has told its stages.
		{name: "events while grading", method: "GET", path: "/v1/evaluations/" + heldID + "/events", wantStatus: 200, reqValid: true,
			wantEvents: []string{"queued", "rubric_matched", "grading", "completed"},
			onStream: func(body string) {
				if strings.Contains(body, "event: grading\n") {
					gated.Release()
				}
			}},
		{name: "events of an unknown evaluation", method: "GET", path: "/v1/evaluations/" + unknownID + "/events", wantStatus: 404, wantType: "not-found", reqValid: true},
		{name: "events of a malformed id", method: "GET", path: "/v1/evaluations/nope/events", wantStatus: 404, wantType: "not-found", reqValid: true},
		{name: "events with the store down", f: down, method: "GET", path: "/v1/evaluations/" + evalID + "/events", wantStatus: 503, wantType: "unavailable", reqValid: true},
		{name: "events with the store failing", f: broken, method: "GET", path: "/v1/evaluations/" + evalID + "/events", wantStatus: 500, wantType: "internal", reqValid: true},

		// POST /v1/evaluations/batch and GET /v1/batches/{id}.
		{name: "queue a batch", method: "POST", path: "/v1/evaluations/batch", contentType: "application/json", body: twoItems, wantStatus: 202, reqValid: true},
		{name: "queue a batch afresh with an Idempotency-Key", method: "POST", path: "/v1/evaluations/batch", contentType: "application/json", body: twoItems,
			header: http.Header{"Idempotency-Key": {"batch-1"}, "Cache-Control": {"no-cache"}}, wantStatus: 202, reqValid: true},
		{name: "retry the batch with the same Idempotency-Key", method: "POST", path: "/v1/evaluations/batch", contentType: "application/json", body: twoItems,
			header: http.Header{"Idempotency-Key": {"batch-1"}, "Cache-Control": {"no-cache"}}, wantStatus: 202, reqValid: true,
			wantHeaders: map[string]string{"Idempotent-Replayed": "true"}},
		{name: "same Idempotency-Key, another batch", method: "POST", path: "/v1/evaluations/batch", contentType: "application/json", body: stalledBody,
			header: http.Header{"Idempotency-Key": {"batch-1"}}, wantStatus: 422, wantType: "invalid-field", reqValid: true},
		{name: "batch Idempotency-Key too long", method: "POST", path: "/v1/evaluations/batch", contentType: "application/json", body: twoItems,
			header: http.Header{"Idempotency-Key": {strings.Repeat("k", 256)}}, wantStatus: 400, wantType: "invalid-parameter"},
		{name: "duplicate batch while the first is in flight", f: stalled, method: "POST", path: "/v1/evaluations/batch", contentType: "application/json",
			body: stalledBody, header: http.Header{"Idempotency-Key": {"batch-in-flight"}}, wantStatus: 409, wantType: "conflict", reqValid: true},
		{name: "malformed batch", method: "POST", path: "/v1/evaluations/batch", contentType: "application/json", body: `{"items": [`, wantStatus: 400, wantType: "malformed-request"},
		{name: "batch item with an unknown field", method: "POST", path: "/v1/evaluations/batch", contentType: "application/json",
			body: `{"items":[{"answer":"a b","score":1}]}`, wantStatus: 400, wantType: "malformed-request"},
		{name: "batch too large", method: "POST", path: "/v1/evaluations/batch", contentType: "application/json", body: hugeBatch, wantStatus: 413, wantType: "too-large", reqValid: true},
		{name: "batch as text", method: "POST", path: "/v1/evaluations/batch", contentType: "text/plain", body: twoItems, wantStatus: 415, wantType: "unsupported-media-type"},
		{name: "empty batch", method: "POST", path: "/v1/evaluations/batch", contentType: "application/json", body: `{"items":[]}`, wantStatus: 422, wantType: "invalid-field"},
		{name: "batch of 101", method: "POST", path: "/v1/evaluations/batch", contentType: "application/json", body: batchOf101, wantStatus: 422, wantType: "invalid-field"},
		{name: "batch item without an answer", method: "POST", path: "/v1/evaluations/batch", contentType: "application/json",
			body: `{"items":[{"answer":"a b"},{"question":"q"}]}`, wantStatus: 422, wantType: "invalid-field"},
		{name: "batch items with invalid fields", method: "POST", path: "/v1/evaluations/batch", contentType: "application/json",
			body: `{"items":[{"answer":"a b","grader":"oracle"},{"answer":"` + strings.Repeat("a", 2001) + `"}]}`, wantStatus: 422, wantType: "invalid-field", reqValid: true},
		{name: "batch item with a callback to a private address", method: "POST", path: "/v1/evaluations/batch", contentType: "application/json",
			body: `{"items":[{"answer":"a b","callback_url":"http://169.254.169.254/latest"}]}`, wantStatus: 422, wantType: "invalid-field", reqValid: true},
		{name: "batch with the queue full", f: full, method: "POST", path: "/v1/evaluations/batch", contentType: "application/json", body: stalledBody,
			wantStatus: 503, wantType: "unavailable", reqValid: true, wantHeaders: map[string]string{"Retry-After": "30"}},
		{name: "batch with the store down", f: down, method: "POST", path: "/v1/evaluations/batch", contentType: "application/json", body: stalledBody,
			wantStatus: 503, wantType: "unavailable", reqValid: true},
		{name: "batch with the store failing", f: broken, method: "POST", path: "/v1/evaluations/batch", contentType: "application/json", body: stalledBody,
			wantStatus: 500, wantType: "internal", reqValid: true},
		{name: "get a batch", method: "GET", path: "/v1/batches/" + batchID, wantStatus: 200, reqValid: true},
		{name: "get a regrade as a batch", method: "GET", path: "/v1/batches/" + regradeID, wantStatus: 200, reqValid: true},
		{name: "unknown batch", method: "GET", path: "/v1/batches/" + unknownID, wantStatus: 404, wantType: "not-found", reqValid: true},
		{name: "malformed batch id", method: "GET", path: "/v1/batches/nope", wantStatus: 404, wantType: "not-found", reqValid: true},
		{name: "another key's batch", f: keyed, auth: bearer(gradeToken), method: "GET", path: "/v1/batches/" + keyedBatchID, wantStatus: 404, wantType: "not-found", reqValid: true},
		{name: "get a batch with the store down", f: down, method: "GET", path: "/v1/batches/" + batchID, wantStatus: 503, wantType: "unavailable", reqValid: true},
		{name: "get a batch with the store failing", f: broken, method: "GET", path: "/v1/batches/" + batchID, wantStatus: 500, wantType: "internal", reqValid: true},

		// POST /v1/rubrics/{id}/regrade and GET /v1/regrades/{id}.
		{name: "regrade a rubric", method: "POST", path: "/v1/rubrics/api-rate-limiting/regrade", wantStatus: 202, reqValid: true},
		{name: "regrade an unknown rubric", method: "POST", path: "/v1/rubrics/no-such-rubric/regrade", wantStatus: 404, wantType: "not-found", reqValid: true},
		{name: "grade key regrades", f: keyed, auth: bearer(gradeToken), method: "POST", path: "/v1/rubrics/db-acid/regrade", wantStatus: 403, wantType: "forbidden", reqValid: true},
		{name: "regrade with the store down", f: down, method: "POST", path: "/v1/rubrics/db-acid/regrade", wantStatus: 503, wantType: "unavailable", reqValid: true},
		{name: "regrade with the store failing", f: broken, method: "POST", path: "/v1/rubrics/db-acid/regrade", wantStatus: 500, wantType: "internal", reqValid: true},
		{name: "get a regrade", method: "GET", path: "/v1/regrades/" + regradeID, wantStatus: 200, reqValid: true},
		{name: "a batch is not a regrade", method: "GET", path: "/v1/regrades/" + batchID, wantStatus: 404, wantType: "not-found", reqValid: true},
		{name: "unknown regrade", method: "GET", path: "/v1/regrades/" + unknownID, wantStatus: 404, wantType: "not-found", reqValid: true},
		{name: "grade key reads a regrade", f: keyed, auth: bearer(gradeToken), method: "GET", path: "/v1/regrades/" + unknownID, wantStatus: 403, wantType: "forbidden", reqValid: true},
		{name: "get a regrade with the store down", f: down, method: "GET", path: "/v1/regrades/" + regradeID, wantStatus: 503, wantType: "unavailable", reqValid: true},
		{name: "get a regrade with the store failing", f: broken, method: "GET", path: "/v1/regrades/" + regradeID, wantStatus: 500, wantType: "internal", reqValid: true},

		// Requests no operation describes.
		{name: "unknown path", method: "GET", path: "/v1/nothing-here", wantStatus: 404, wantType: "not-found", route: noPath},
		{name: "trailing slash", method: "GET", path: "/v1/evaluations/", wantStatus: 404, wantType: "not-found", route: noPath},
		{name: "DELETE on evaluations", method: "DELETE", path: "/v1/evaluations", wantStatus: 405, wantType: "method-not-allowed", route: noOperation,
			wantHeaders: map[string]string{"Allow": "GET, POST"}},
		{name: "PATCH on a rubric", method: "PATCH", path: "/v1/rubrics/db-acid", contentType: "application/json", body: `{}`, wantStatus: 405, wantType: "method-not-allowed", route: noOperation,
			wantHeaders: map[string]string{"Allow": "GET, PUT, DELETE"}},
	}

	// Every /v1 operation: without a key on a server with keys (which the
	// document does not accept either), and over the rate limit.
	for _, op := range []struct{ method, path, body string }{
		{"POST", "/v1/evaluations", `{"rubric_id":"db-acid","answer":"Atomicity: all or nothing."}`},
		{"GET", "/v1/evaluations", ""},
		{"GET", "/v1/evaluations/" + evalID, ""},
		{"GET", "/v1/rubrics", ""},
		{"GET", "/v1/rubrics/search?q=cache", ""},
		{"GET", "/v1/rubrics/db-acid", ""},
		{"POST", "/v1/rubrics", newRubric},
		{"PUT", "/v1/rubrics/db-acid-copy", changed},
		{"DELETE", "/v1/rubrics/db-acid-copy", ""},
		{"POST", "/v1/evaluations/batch", stalledBody},
		{"GET", "/v1/evaluations/" + evalID + "/events", ""},
		{"GET", "/v1/batches/" + batchID, ""},
		{"POST", "/v1/rubrics/db-acid/regrade", ""},
		{"GET", "/v1/regrades/" + regradeID, ""},
	} {
		ct := ""
		if op.body != "" {
			ct = "application/json"
		}
		tests = append(tests,
			row{name: op.method + " " + op.path + " without a key", f: keyed, auth: noAuth, method: op.method, path: op.path, contentType: ct, body: op.body,
				wantStatus: 401, wantType: "unauthorized", wantHeaders: map[string]string{"WWW-Authenticate": `Bearer realm="assay"`}},
			row{name: op.method + " " + op.path + " over the rate limit", f: limited, method: op.method, path: op.path, contentType: ct, body: op.body,
				wantStatus: 429, wantType: "rate-limited", reqValid: true, wantHeaders: map[string]string{"RateLimit-Limit": "1", "RateLimit-Remaining": "0"}},
		)
	}

	covered := map[string]map[int]bool{} // operation id -> statuses seen
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.f
			if f == nil {
				f = main
			}
			header := http.Header{}
			for k, vs := range tt.header {
				header[k] = vs
			}
			switch tt.auth {
			case "":
				header.Set("Authorization", bearer(adminToken))
			case noAuth:
			default:
				header.Set("Authorization", tt.auth)
			}
			in, reqErr := s.checkRequest(t, tt.method, tt.path, tt.contentType, tt.body, header)

			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			for k, vs := range header {
				req.Header[k] = vs
			}
			rec := httptest.NewRecorder()
			var w http.ResponseWriter = rec
			if tt.onStream != nil {
				w = streamRecorder{rec, tt.onStream}
			}
			f.handler.ServeHTTP(w, req)
			if want := tt.header.Get("X-Request-Id"); want != "" {
				if got := rec.Header().Get("X-Request-Id"); got != want {
					t.Errorf("X-Request-Id = %q, want %q (echoed)", got, want)
				}
			}
			if tt.wantHeaders["Idempotent-Replayed"] == "" && rec.Header().Get("Idempotent-Replayed") != "" {
				t.Errorf("Idempotent-Replayed = %q on a response that is not a replay", rec.Header().Get("Idempotent-Replayed"))
			}
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tt.wantStatus, rec.Body)
			}
			if tt.wantType != "" {
				if got := decode[problem](t, rec).Type; got != problemBase+tt.wantType {
					t.Errorf("problem type = %q, want %q", got, problemBase+tt.wantType)
				}
			}
			for k, want := range tt.wantHeaders {
				if got := rec.Header().Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}

			if tt.route != routed {
				want := routers.ErrPathNotFound
				schema := "NotFoundProblem"
				if tt.route == noOperation {
					want, schema = routers.ErrMethodNotAllowed, "MethodNotAllowedProblem"
				}
				if !errors.Is(reqErr, want) {
					t.Errorf("routing in the document: got %v, want %v", reqErr, want)
				}
				if err := s.checkProblem(rec, schema); err != nil {
					t.Errorf("response does not match %s: %v\nbody: %s", schema, err, rec.Body)
				}
				return
			}
			if in == nil {
				t.Fatalf("the document has no operation for %s %s: %v", tt.method, tt.path, reqErr)
			}
			if got := reqErr == nil; got != tt.reqValid {
				t.Errorf("document accepts the request = %v, want %v (error: %v)", got, tt.reqValid, reqErr)
			}
			if err := s.checkResponse(in, rec); err != nil {
				t.Errorf("response does not match the document: %v\nheaders: %v\nbody: %.2000s", err, rec.Header(), rec.Body)
			}
			if rec.Header().Get("Content-Type") == "text/event-stream" || tt.wantEvents != nil {
				if got := s.checkEvents(t, rec.Body.String()); !slices.Equal(got, tt.wantEvents) {
					t.Errorf("events = %q, want %q\nbody: %.2000s", got, tt.wantEvents, rec.Body)
				}
			}
			op := in.Route.Operation.OperationID
			if covered[op] == nil {
				covered[op] = map[int]bool{}
			}
			covered[op][rec.Code] = true
		})
	}

	// Every documented response of every operation was seen, and so every
	// route and status the document promises has been checked against the
	// server.
	t.Run("coverage", func(t *testing.T) {
		for path, item := range s.doc.Paths.Map() {
			for method, op := range item.Operations() {
				for code := range op.Responses.Map() {
					var status int
					if err := json.Unmarshal([]byte(code), &status); err != nil {
						t.Errorf("%s %s: response %q is not a status", method, path, code)
						continue
					}
					if !covered[op.OperationID][status] {
						t.Errorf("%s %s (%s): status %d documented but never exercised", method, path, op.OperationID, status)
					}
				}
			}
		}
	})
}

// streamRecorder records a response and calls onWrite with the body so
// far after every write, so that a test can act while a stream is being
// written.
type streamRecorder struct {
	*httptest.ResponseRecorder
	onWrite func(body string)
}

func (r streamRecorder) Write(b []byte) (int, error) {
	n, err := r.ResponseRecorder.Write(b)
	r.onWrite(r.Body.String())
	return n, err
}

func (r streamRecorder) WriteString(s string) (int, error) {
	n, err := r.ResponseRecorder.WriteString(s)
	r.onWrite(r.Body.String())
	return n, err
}

// checkEvents parses a Server-Sent Events body as the document describes
// it: events of an id counting from 1, a name and one line of data that is
// an Evaluation, each ended by a blank line, and comment lines. It returns
// the events' names.
func (s *spec) checkEvents(t *testing.T, body string) []string {
	t.Helper()
	var names []string
	schema := s.doc.Components.Schemas["Evaluation"].Value
	for _, block := range strings.SplitAfter(body, "\n\n") {
		if block == "" {
			continue // after the last blank line
		}
		if !strings.HasSuffix(block, "\n\n") {
			t.Errorf("stream does not end with a blank line: %q", block)
			continue
		}
		var fields []string
		for _, line := range strings.Split(strings.TrimSuffix(block, "\n\n"), "\n") {
			if !strings.HasPrefix(line, ":") {
				fields = append(fields, line)
			}
		}
		if len(fields) == 0 {
			continue // a comment
		}
		if len(fields) != 3 || fields[0] != "id: "+strconv.Itoa(len(names)+1) ||
			!strings.HasPrefix(fields[1], "event: ") || !strings.HasPrefix(fields[2], "data: ") {
			t.Errorf("event %d is not id, event and data: %q", len(names)+1, block)
			continue
		}
		name := strings.TrimPrefix(fields[1], "event: ")
		names = append(names, name)
		var v any
		if err := json.Unmarshal([]byte(strings.TrimPrefix(fields[2], "data: ")), &v); err != nil {
			t.Errorf("event %s: data is not JSON: %v", name, err)
			continue
		}
		if err := schema.VisitJSON(v, openapi3.EnableJSONSchema2020(), openapi3.MultiErrors()); err != nil {
			t.Errorf("event %s: data does not match the Evaluation schema: %v", name, err)
		}
		status, _ := v.(map[string]any)["status"].(string)
		if (name == "completed" || name == "failed") && status != name {
			t.Errorf("event %s carries an evaluation %q", name, status)
		}
	}
	return names
}

// TestOpenAPIRejectsMismatches makes sure the checks above can fail: real
// responses, altered, must not match the document.
func TestOpenAPIRejectsMismatches(t *testing.T) {
	f := newFixture(t)
	s := loadSpec(t, f)
	keys := memory.NewKeys()
	newKey(t, keys, nil, auth.ScopeAdmin)
	keyed := newFixtureWithConfig(t, keyedConfig(keys), memory.New()) // answers 401 to requests without a key
	limitedCfg := testConfig()
	limitedCfg.DefaultLimit = ratelimit.Limit{RPS: 0.001, Burst: 1}
	limited := newFixtureWithConfig(t, limitedCfg, memory.New()) // answers 429 after one request
	limited.do("GET", "/v1/rubrics", "", "")
	body := `{"rubric_id":"db-acid","answer":"Atomicity: all or nothing."}`
	tests := []struct {
		name  string
		alter func(rec *httptest.ResponseRecorder) *httptest.ResponseRecorder
	}{
		{"score missing", func(rec *httptest.ResponseRecorder) *httptest.ResponseRecorder {
			return editJSON(t, rec, func(m map[string]any) { delete(m, "score") })
		}},
		{"band not a band", func(rec *httptest.ResponseRecorder) *httptest.ResponseRecorder {
			return editJSON(t, rec, func(m map[string]any) { m["score"].(map[string]any)["band"] = "excellent" })
		}},
		{"level above 4", func(rec *httptest.ResponseRecorder) *httptest.ResponseRecorder {
			return editJSON(t, rec, func(m map[string]any) { m["criteria"].([]any)[0].(map[string]any)["level"] = 5 })
		}},
		{"unknown flag", func(rec *httptest.ResponseRecorder) *httptest.ResponseRecorder {
			return editJSON(t, rec, func(m map[string]any) { m["flags"] = []string{"genius"} })
		}},
		{"no Location", func(rec *httptest.ResponseRecorder) *httptest.ResponseRecorder {
			rec.Header().Del("Location")
			return rec
		}},
		{"no X-Request-Id", func(rec *httptest.ResponseRecorder) *httptest.ResponseRecorder {
			rec.Header().Del("X-Request-Id")
			return rec
		}},
		{"undocumented status", func(rec *httptest.ResponseRecorder) *httptest.ResponseRecorder {
			rec.Code = http.StatusTeapot
			return rec
		}},
		{"problem as application/json", func(*httptest.ResponseRecorder) *httptest.ResponseRecorder {
			rec := f.do("POST", "/v1/evaluations", "application/json", `{"answer":" "}`)
			rec.Header().Set("Content-Type", "application/json")
			return rec
		}},
		{"wrong problem type for the status", func(*httptest.ResponseRecorder) *httptest.ResponseRecorder {
			rec := f.do("POST", "/v1/evaluations", "application/json", `{"answer":" "}`)
			return editJSON(t, rec, func(m map[string]any) { m["type"] = problemBase + "conflict" })
		}},
		{"cached not a boolean", func(rec *httptest.ResponseRecorder) *httptest.ResponseRecorder {
			return editJSON(t, rec, func(m map[string]any) { m["cached"] = "yes" })
		}},
		{"cached missing", func(rec *httptest.ResponseRecorder) *httptest.ResponseRecorder {
			return editJSON(t, rec, func(m map[string]any) { delete(m, "cached") })
		}},
		{"Idempotent-Replayed not true", func(rec *httptest.ResponseRecorder) *httptest.ResponseRecorder {
			rec.Header().Set("Idempotent-Replayed", "false")
			return rec
		}},
		{"RateLimit-Remaining negative", func(rec *httptest.ResponseRecorder) *httptest.ResponseRecorder {
			rec.Header().Set("RateLimit-Remaining", "-1")
			return rec
		}},
		{"401 without WWW-Authenticate", func(*httptest.ResponseRecorder) *httptest.ResponseRecorder {
			rec := keyed.do("POST", "/v1/evaluations", "application/json", body)
			rec.Header().Del("WWW-Authenticate")
			return rec
		}},
		{"429 without Retry-After", func(*httptest.ResponseRecorder) *httptest.ResponseRecorder {
			rec := limited.do("POST", "/v1/evaluations", "application/json", body)
			rec.Header().Del("Retry-After")
			return rec
		}},
		{"idempotency conflict as invalid-field", func(*httptest.ResponseRecorder) *httptest.ResponseRecorder {
			rec := limited.do("POST", "/v1/evaluations", "application/json", body)
			rec.Code = http.StatusConflict
			return editJSON(t, rec, func(m map[string]any) { m["status"] = 409 })
		}},
		{"matched_by not a way of matching", func(rec *httptest.ResponseRecorder) *httptest.ResponseRecorder {
			return editJSON(t, rec, func(m map[string]any) { m["rubric"].(map[string]any)["matched_by"] = "guess" })
		}},
		{"follow_up_of without its evaluation", func(rec *httptest.ResponseRecorder) *httptest.ResponseRecorder {
			return editJSON(t, rec, func(m map[string]any) {
				m["follow_up_of"] = map[string]any{"index": 0, "question": "Why?", "criterion": "atomicity"}
			})
		}},
		{"error without a status", func(rec *httptest.ResponseRecorder) *httptest.ResponseRecorder {
			return editJSON(t, rec, func(m map[string]any) {
				m["status"], m["error"] = "failed", map[string]any{"type": problemBase + "internal", "title": "Internal server error"}
			})
		}},
		{"regrade_of without its score", func(rec *httptest.ResponseRecorder) *httptest.ResponseRecorder {
			return editJSON(t, rec, func(m map[string]any) {
				m["regrade_of"] = map[string]any{"evaluation_id": "0190f0e0-0000-7000-8000-000000000000", "rubric_version": 1}
			})
		}},
		{"no-match problem without candidates", func(*httptest.ResponseRecorder) *httptest.ResponseRecorder {
			rec := f.do("POST", "/v1/evaluations", "application/json", `{"question":"What is the best pizza place in Naples?","answer":"Da Michele."}`)
			return editJSON(t, rec, func(m map[string]any) { delete(m, "candidates") })
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := s.checkRequest(t, "POST", "/v1/evaluations", "application/json", body, http.Header{"Authorization": {"Bearer any"}})
			if err != nil {
				t.Fatalf("request: %v", err)
			}
			rec := f.do("POST", "/v1/evaluations", "application/json", body)
			if err := s.checkResponse(in, rec); err != nil {
				t.Fatalf("the unaltered response does not match: %v", err)
			}
			rec = tt.alter(rec)
			if err := s.checkResponse(in, rec); err == nil {
				t.Errorf("altered response (%s) matches the document, want a mismatch; body %.300s", tt.name, rec.Body)
			}
		})
	}
}

// editJSON returns a copy of rec with its JSON body changed by edit.
func editJSON(t *testing.T, rec *httptest.ResponseRecorder, edit func(map[string]any)) *httptest.ResponseRecorder {
	t.Helper()
	m := decode[map[string]any](t, rec)
	edit(m)
	out := httptest.NewRecorder()
	for k, vs := range rec.Header() {
		out.Header()[k] = vs
	}
	out.Code = rec.Code
	if err := json.NewEncoder(out.Body).Encode(m); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestProblemDocs checks docs/problems.md against the document: every
// problem type the document names has a section whose anchor is its slug,
// and each section's example is a problem of that type.
func TestProblemDocs(t *testing.T) {
	s := loadSpec(t, newFixture(t))
	md, err := os.ReadFile("../../docs/problems.md")
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]string{} // slug -> section text
	for _, part := range strings.Split(string(md), "\n## ")[1:] {
		slug, body, _ := strings.Cut(part, "\n")
		sections[slug] = body
	}
	named := 0
	for name, ref := range s.doc.Components.Schemas {
		for _, sub := range ref.Value.AllOf {
			typ := sub.Value.Properties["type"]
			if typ == nil || typ.Value.Const == nil {
				continue
			}
			named++
			slug := strings.TrimPrefix(typ.Value.Const.(string), problemBase)
			if _, ok := sections[slug]; !ok {
				t.Errorf("schema %s: problem type %q has no section ## %s in docs/problems.md", name, slug, slug)
			}
		}
	}
	if named < 12 {
		t.Errorf("the document names %d problem types, want at least 12", named)
	}
	for slug, body := range sections {
		t.Run(slug, func(t *testing.T) {
			_, rest, ok := strings.Cut(body, "```json\n")
			example, _, ok2 := strings.Cut(rest, "```")
			if !ok || !ok2 {
				t.Fatal("no JSON example")
			}
			var p problem
			if err := json.Unmarshal([]byte(example), &p); err != nil {
				t.Fatalf("example is not JSON: %v", err)
			}
			if got, want := p.Type, problemBase+slug; got != want {
				t.Errorf("example type = %q, want %q", got, want)
			}
			if p.Status < 400 || p.Title == "" || p.Detail == "" || !strings.Contains(body, "**"+strconv.Itoa(p.Status)+" "+p.Title+".**") {
				t.Errorf("example status %d and title %q do not match the section's opening line", p.Status, p.Title)
			}
			var v any
			_ = json.Unmarshal([]byte(example), &v)
			if err := s.doc.Components.Schemas["Problem"].Value.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
				t.Errorf("example does not match the Problem schema: %v", err)
			}
		})
	}
}
