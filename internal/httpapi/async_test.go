package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/assay-dev/assay/internal/embed"
	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/fault"
	"github.com/assay-dev/assay/internal/grader"
	"github.com/assay-dev/assay/internal/httpapi"
	"github.com/assay-dev/assay/internal/jobs"
	"github.com/assay-dev/assay/internal/memory"
	"github.com/assay-dev/assay/internal/rubric"
	"github.com/assay-dev/assay/internal/webhook"
	"github.com/assay-dev/assay/rubrics"
)

// gateGrader grades like the heuristic grader once its gate opens, so a
// test can watch an evaluation while it is being graded.
type gateGrader struct{ gate chan struct{} }

func (g gateGrader) Kind() string { return "gated" }

func (g gateGrader) Grade(ctx context.Context, in evaluation.GradeInput) (evaluation.Grading, error) {
	select {
	case <-g.gate:
	case <-ctx.Done():
		return evaluation.Grading{}, fault.Wrap(ctx.Err(), fault.Unavailable, "cancelled")
	}
	return grader.Heuristic{}.Grade(ctx, in)
}

type asyncHarness struct {
	srv   *httpapi.Server
	http  *httptest.Server
	store *memory.Store
	gate  chan struct{}
}

// newAsyncHarness wires the service, the in-memory pool and the broker as
// cmd/api does without a database, behind a real HTTP server (streams
// need one).
func newAsyncHarness(t *testing.T, queueLimit int) *asyncHarness {
	t.Helper()
	bank, err := rubric.Load(rubrics.FS)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	h := &asyncHarness{store: memory.New(), gate: make(chan struct{})}
	svc := evaluation.NewService(h.store, embed.NewLocalForBank(bank), []evaluation.Grader{grader.Heuristic{}, gateGrader{h.gate}},
		evaluation.Config{MatchThreshold: 0.2, MaxAnswerRunes: 2000}, log)
	if _, err := svc.SyncRubrics(t.Context(), bank); err != nil {
		t.Fatal(err)
	}
	pool := jobs.NewPool(h.store, jobs.Config{Workers: 2, RetryBase: time.Millisecond})
	broker := jobs.NewBroker()
	async := evaluation.NewAsync(svc, pool, evaluation.AsyncConfig{QueueLimit: queueLimit, Notifier: broker, Problem: httpapi.ErrorProblem})
	pool.Start(async)
	cfg := testConfig()
	cfg.Async, cfg.Events, cfg.Heartbeat = async, broker, 20*time.Millisecond
	h.srv = httpapi.New(svc, cfg, log)
	h.http = httptest.NewServer(h.srv)
	t.Cleanup(func() {
		h.srv.CloseStreams()
		h.http.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = pool.Stop(ctx)
	})
	return h
}

func (h *asyncHarness) request(t *testing.T, method, path, body string, kv ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, h.http.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Set(kv[i], kv[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// waitStatus polls an evaluation until it has status.
func (h *asyncHarness) waitStatus(t *testing.T, id, status string) evaluation.Evaluation {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, b := h.request(t, http.MethodGet, "/v1/evaluations/"+id, "")
		var e evaluation.Evaluation
		_ = json.Unmarshal(b, &e)
		if e.Status == status {
			return e
		}
		if time.Now().After(deadline) {
			t.Fatalf("evaluation %s is %q, want %q", id, e.Status, status)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func asyncBody(grader string) string {
	return `{"question":"` + rateLimitQuestion + `","answer":"` + rateLimitAnswer + `","grader":"` + grader + `"}`
}

func TestRespondAsync(t *testing.T) {
	h := newAsyncHarness(t, 0)
	close(h.gate)
	tests := []struct {
		name       string
		prefer     string
		body       string
		wantStatus int
	}{
		{"respond-async", "respond-async", asyncBody("heuristic"), http.StatusAccepted},
		{"among other preferences", "return=minimal, respond-async; wait=10", asyncBody("heuristic"), http.StatusAccepted},
		{"no preference stays synchronous", "", asyncBody("heuristic"), http.StatusCreated},
		{"a callback needs the preference", "", `{"answer":"a","callback_url":"https://example.com/"}`, http.StatusUnprocessableEntity},
		{"callbacks are off without a secret", "respond-async", `{"answer":"a","callback_url":"https://example.com/"}`, http.StatusUnprocessableEntity},
		{"invalid fields are refused at once", "respond-async", `{"answer":""}`, http.StatusUnprocessableEntity},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := h.request(t, http.MethodPost, "/v1/evaluations", tc.body, "Prefer", tc.prefer)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d %s, want %d", resp.StatusCode, b, tc.wantStatus)
			}
			if tc.wantStatus != http.StatusAccepted {
				if resp.Header.Get("Preference-Applied") != "" {
					t.Error("Preference-Applied on a response that did not apply it")
				}
				return
			}
			var e evaluation.Evaluation
			_ = json.Unmarshal(b, &e)
			if e.Status != evaluation.StatusQueued || resp.Header.Get("Location") != "/v1/evaluations/"+e.ID ||
				resp.Header.Get("Preference-Applied") != "respond-async" {
				t.Fatalf("202: status %q, Location %q, Preference-Applied %q", e.Status, resp.Header.Get("Location"), resp.Header.Get("Preference-Applied"))
			}
			done := h.waitStatus(t, e.ID, evaluation.StatusCompleted)
			if done.Rubric.ID != "api-rate-limiting" || len(done.Criteria) == 0 {
				t.Errorf("completed evaluation = %+v", done)
			}
		})
	}
}

// sseEvent is one parsed Server-Sent Event.
type sseEvent struct {
	name string
	data evaluation.Evaluation
}

// readEvents reads a stream until it ends, sending each event (and
// heartbeats, as ":") on the returned channel.
func readEvents(t *testing.T, url string) <-chan sseEvent {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	out := make(chan sseEvent, 64)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, ":"):
				out <- sseEvent{name: ":"}
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				_ = json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev.data)
			case line == "" && ev.name != "":
				out <- ev
				ev = sseEvent{}
			}
		}
	}()
	return out
}

func TestEventStream(t *testing.T) {
	h := newAsyncHarness(t, 0)
	_, b := h.request(t, http.MethodPost, "/v1/evaluations", asyncBody("gated"), "Prefer", "respond-async")
	var e evaluation.Evaluation
	_ = json.Unmarshal(b, &e)
	url := h.http.URL + "/v1/evaluations/" + e.ID + "/events"
	events := readEvents(t, url)
	var names []string
	heartbeats := 0
	for ev := range events {
		if ev.name == ":" {
			heartbeats++
			if heartbeats == 2 {
				close(h.gate) // grade once the stream has shown it stays open
			}
			continue
		}
		names = append(names, ev.name)
		if ev.name == evaluation.EventCompleted && len(ev.data.Criteria) == 0 {
			t.Error("the completed event lacks the result")
		}
	}
	want := []string{evaluation.EventQueued, evaluation.EventRubricMatched, evaluation.EventGrading, evaluation.EventCompleted}
	if !slices.Equal(names, want) {
		t.Errorf("events = %q, want %q", names, want)
	}
	// After the end, the outcome comes at once, alone.
	names = nil
	for ev := range readEvents(t, url) {
		names = append(names, ev.name)
	}
	if !slices.Equal(names, []string{evaluation.EventCompleted}) {
		t.Errorf("events after completion = %q, want only completed", names)
	}
	if resp, _ := h.request(t, http.MethodGet, "/v1/evaluations/01a21b1f-4621-723f-8079-98112c41852c/events", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("stream of a missing evaluation = %d, want 404", resp.StatusCode)
	}
}

func TestEventStreamEndsOnShutdown(t *testing.T) {
	h := newAsyncHarness(t, 0)
	_, b := h.request(t, http.MethodPost, "/v1/evaluations", asyncBody("gated"), "Prefer", "respond-async")
	var e evaluation.Evaluation
	_ = json.Unmarshal(b, &e)
	events := readEvents(t, h.http.URL+"/v1/evaluations/"+e.ID+"/events")
	<-events // queued
	h.srv.CloseStreams()
	select {
	case <-time.After(5 * time.Second):
		t.Fatal("the stream outlived CloseStreams")
	case <-func() chan struct{} {
		done := make(chan struct{})
		go func() {
			for range events {
			}
			close(done)
		}()
		return done
	}():
	}
}

func TestBatchesAndRegrades(t *testing.T) {
	h := newAsyncHarness(t, 0)
	close(h.gate)
	items := `{"items":[` + asyncBody("heuristic") + `,{"answer":"An index is a B-tree that speeds up reads and slows down writes."}]}`
	resp, b := h.request(t, http.MethodPost, "/v1/evaluations/batch", items)
	var batch struct {
		ID          string
		Status      string
		Counts      map[string]int
		Evaluations []struct{ ID, Status string }
	}
	_ = json.Unmarshal(b, &batch)
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Location") != "/v1/batches/"+batch.ID || len(batch.Evaluations) != 2 {
		t.Fatalf("POST batch = %d %s", resp.StatusCode, b)
	}
	for _, e := range batch.Evaluations {
		h.waitStatus(t, e.ID, evaluation.StatusCompleted)
	}
	_, b = h.request(t, http.MethodGet, "/v1/batches/"+batch.ID, "")
	_ = json.Unmarshal(b, &batch)
	if batch.Status != evaluation.StatusCompleted || batch.Counts[evaluation.StatusCompleted] != 2 {
		t.Errorf("GET batch = %s", b)
	}

	resp, b = h.request(t, http.MethodPost, "/v1/rubrics/api-rate-limiting/regrade", "")
	var rep evaluation.RegradeReport
	_ = json.Unmarshal(b, &rep)
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Location") != "/v1/regrades/"+rep.ID {
		t.Fatalf("POST regrade = %d %s", resp.StatusCode, b)
	}
	deadline := time.Now().Add(5 * time.Second)
	for rep.Status != evaluation.StatusCompleted && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		_, b = h.request(t, http.MethodGet, "/v1/regrades/"+rep.ID, "")
		_ = json.Unmarshal(b, &rep)
	}
	if rep.Status != evaluation.StatusCompleted || len(rep.Items) != 1 || rep.Changes.Count != 1 {
		t.Errorf("regrade report = %s", b)
	}

	for _, tc := range []struct{ name, path, body string }{
		{"too many items", "/v1/evaluations/batch", `{"items":[` + strings.Repeat(`{"answer":"a"},`, 100) + `{"answer":"a"}]}`},
		{"an item without an answer", "/v1/evaluations/batch", `{"items":[{"answer":"a"},{"question":"q"}]}`},
		{"unknown rubric", "/v1/rubrics/nope/regrade", ""},
		{"unknown batch", "/v1/batches/nope", ""},
	} {
		method := http.MethodPost
		if strings.HasPrefix(tc.path, "/v1/batches") {
			method = http.MethodGet
		}
		if resp, b := h.request(t, method, tc.path, tc.body); resp.StatusCode < 400 || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %s, want a problem", tc.name, resp.StatusCode, b)
		}
	}
}

func TestQueueLimit(t *testing.T) {
	h := newAsyncHarness(t, 2)
	statuses := []int{}
	for range 3 {
		resp, _ := h.request(t, http.MethodPost, "/v1/evaluations", asyncBody("gated"), "Prefer", "respond-async")
		statuses = append(statuses, resp.StatusCode)
		if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
			t.Error("503 without Retry-After")
		}
	}
	if want := []int{202, 202, 503}; !slices.Equal(statuses, want) {
		t.Errorf("statuses = %v, want %v", statuses, want)
	}
	close(h.gate)
}

func TestErrorProblem(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		slug   string
		detail string
	}{
		{"no match", fault.New(fault.NoMatch, "no rubric is similar enough"), 422, "no-matching-rubric", "no rubric is similar enough"},
		{"provider down", fmt.Errorf("grading: %w", fault.New(fault.Unavailable, "the model is down")), 503, "unavailable", "the model is down"},
		{"bad reply", fault.Wrap(errors.New("secret"), fault.Upstream, "the grader returned an invalid grading"), 502, "grader-failed", "the grader returned an invalid grading"},
		{"internal", errors.New("pq: relation secret_table"), 500, "internal", "An unexpected error occurred while grading; it has been logged with the evaluation id."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := httpapi.ErrorProblem(tc.err)
			if p.Status != tc.status || p.Type != httpapi.ProblemBase+tc.slug || p.Detail != tc.detail || p.Title == "" {
				t.Errorf("ErrorProblem = %+v, want %d %s %q", p, tc.status, tc.slug, tc.detail)
			}
		})
	}
}

// asyncOptions configures newAsyncFixture.
type asyncOptions struct {
	queueLimit int
	callbacks  evaluation.Callbacks
	// queue, when set, wraps the in-memory pool, to fail or hold work.
	queue func(evaluation.Queue) evaluation.Queue
}

// newAsyncFixture is newFixtureWithConfig with asynchronous grading wired
// as cmd/api wires it without a database (the in-memory pool, the event
// broker, httpapi.ErrorProblem), so that the asynchronous routes exist and
// queued evaluations get graded.
func newAsyncFixture(t *testing.T, cfg httpapi.Config, store evaluation.Store, opt asyncOptions, extra ...evaluation.Grader) *fixture {
	t.Helper()
	bank, err := rubric.Load(rubrics.FS)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	graders := append([]evaluation.Grader{grader.Heuristic{}}, extra...)
	svc := evaluation.NewService(store, embed.NewLocalForBank(bank), graders,
		evaluation.Config{MatchThreshold: 0.20, MaxAnswerRunes: 2000}, log)
	if _, err := svc.SyncRubrics(context.Background(), bank); err != nil {
		t.Fatal(err)
	}
	pool := jobs.NewPool(store, jobs.Config{Workers: 4, RetryBase: time.Millisecond, Log: log})
	var q evaluation.Queue = pool
	if opt.queue != nil {
		q = opt.queue(pool)
	}
	broker := jobs.NewBroker()
	async := evaluation.NewAsync(svc, q, evaluation.AsyncConfig{QueueLimit: opt.queueLimit, Callbacks: opt.callbacks,
		Notifier: broker, Problem: httpapi.ErrorProblem})
	pool.Start(async)
	cfg.Async, cfg.Events = async, broker
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = 20 * time.Millisecond
	}
	srv := httpapi.New(svc, cfg, log)
	t.Cleanup(func() {
		srv.CloseStreams()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = pool.Stop(ctx)
	})
	return &fixture{t: t, handler: srv, store: store}
}

// waitFor polls an evaluation through f until it has status.
func (f *fixture) waitFor(id, status string) evaluation.Evaluation {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		e := decode[evaluation.Evaluation](f.t, f.do(http.MethodGet, "/v1/evaluations/"+id, "", ""))
		if e.Status == status {
			return e
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("evaluation %s is %q, want %q", id, e.Status, status)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fullQueue is a queue that reports itself full.
type fullQueue struct{ evaluation.Queue }

func (fullQueue) Depth(context.Context) (int, error) { return 1 << 20, nil }

// heldQueue holds every batch in Enqueue until released, so that a test can
// catch a batch request in flight.
type heldQueue struct {
	evaluation.Queue
	entered chan struct{}
	release chan struct{}
}

func newHeldQueue() *heldQueue {
	return &heldQueue{entered: make(chan struct{}, 8), release: make(chan struct{})}
}

func (q *heldQueue) Enqueue(ctx context.Context, b *evaluation.Batch, js []evaluation.Job) error {
	if b != nil {
		q.entered <- struct{}{}
		select {
		case <-q.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return q.Queue.Enqueue(ctx, b, js)
}

// quietCallbacks checks callback URLs with the server's real rules, and
// delivers nothing.
type quietCallbacks struct{ *webhook.Client }

func (quietCallbacks) Send(context.Context, string, []byte) error { return nil }

// newQuietCallbacks resolves hosts with a table instead of DNS:
// hooks.example.com is public, intranet.example.com private.
func newQuietCallbacks(t *testing.T) quietCallbacks {
	t.Helper()
	c, err := webhook.New(webhook.Config{Secret: "test-secret", Resolver: tableResolver{
		"hooks.example.com":    "93.184.216.34",
		"intranet.example.com": "10.1.2.3",
	}})
	if err != nil {
		t.Fatal(err)
	}
	return quietCallbacks{c}
}

// tableResolver resolves the hosts it lists, and no other.
type tableResolver map[string]string

func (r tableResolver) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	ip, ok := r[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return []net.IPAddr{{IP: net.ParseIP(ip)}}, nil
}
