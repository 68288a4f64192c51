package main

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/assay-dev/assay/internal/postgres/pgtest"
)

// Acceptance tests of asynchronous grading on PostgreSQL and River, with
// real server processes and the mock LLM as a real process.

type batchReply struct {
	ID          string
	Status      string
	Counts      map[string]int
	Evaluations []struct{ ID, Status string }
}

func submitBatch(t *testing.T, p *process, body string) batchReply {
	t.Helper()
	resp, b := p.send(t, http.MethodPost, "/v1/evaluations/batch", body)
	var br batchReply
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(b, &br) != nil {
		t.Fatalf("POST batch = %d %s", resp.StatusCode, b)
	}
	return br
}

func getBatch(t *testing.T, p *process, id string) batchReply {
	t.Helper()
	resp, b := p.send(t, http.MethodGet, "/v1/batches/"+id, "")
	var br batchReply
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &br) != nil {
		t.Fatalf("GET batch = %d %s", resp.StatusCode, b)
	}
	return br
}

// TestAsyncSurvivesSIGKILL kills a server while it grades (each grading
// takes 2s at the mock LLM) and starts another: River's leader rescues the
// dead process's jobs, and every evaluation completes with exactly one
// stored result.
func TestAsyncSurvivesSIGKILL(t *testing.T) {
	db := pgtest.NewDatabase(t)
	llm := mockLLM(t, "--latency", "2s")
	env := llmEnv(db, llm, "ASSAY_WORKERS=4", "ASSAY_JOB_RESCUE_AFTER=6s", "ASSAY_REQUEST_TIMEOUT=4s")
	first := startProcess(t, env...)
	const n = 12
	batch := submitBatch(t, first, batchItems(0, n))
	waitFor(t, 30*time.Second, "gradings to start", func() bool {
		return queryInt(t, db, `SELECT count(*) FROM river_job WHERE state = 'running'`) > 0
	})
	running := queryInt(t, db, `SELECT count(*) FROM evaluations WHERE status = 'running'`)
	first.stop(t, syscall.SIGKILL)
	t.Logf("killed the server with %d evaluations running", running)

	killed := time.Now()
	second := startProcess(t, env...)
	waitFor(t, 150*time.Second, "the batch to complete after the restart", func() bool {
		return getBatch(t, second, batch.ID).Status == "completed"
	})
	t.Logf("recovered in %s", time.Since(killed).Round(time.Second))
	got := getBatch(t, second, batch.ID)
	if got.Counts["completed"] != n || len(got.Evaluations) != n {
		t.Fatalf("after the restart: counts %v, %d evaluations; want %d completed", got.Counts, len(got.Evaluations), n)
	}
	for _, e := range got.Evaluations {
		resp, b := second.send(t, http.MethodGet, "/v1/evaluations/"+e.ID, "")
		var ev struct {
			Status   string
			Criteria []any
			Grader   struct{ Kind string }
		}
		if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &ev) != nil || ev.Status != "completed" || len(ev.Criteria) == 0 || ev.Grader.Kind != "llm" {
			t.Errorf("evaluation %s = %d %s", e.ID, resp.StatusCode, b)
		}
	}
	if rows := queryInt(t, db, `SELECT count(*) FROM evaluations`); rows != n {
		t.Errorf("%d evaluation rows, want %d: one stored result each", rows, n)
	}
	// River records a job's completion a moment after the job stored its
	// result.
	waitFor(t, 10*time.Second, "every grading job to be completed", func() bool {
		return queryInt(t, db, `SELECT count(*) FROM river_job WHERE kind = 'assay_grade' AND state = 'completed'`) == n
	})
	if rescued := queryInt(t, db, `SELECT count(*) FROM river_job WHERE kind = 'assay_grade' AND attempt > 1`); rescued < running {
		t.Errorf("%d jobs ran more than once, want at least the %d running at the kill", rescued, running)
	}
}

var completedJobs = regexp.MustCompile(`assay_jobs_total\{kind="assay_grade",outcome="completed"\} (\d+)`)

// TestAsyncDrainsThousand queues 1,000 evaluations against the mock LLM
// and checks that each is graded exactly once.
func TestAsyncDrainsThousand(t *testing.T) {
	db := pgtest.NewDatabase(t)
	llm := mockLLM(t, "--latency", "20ms")
	p := startProcess(t, llmEnv(db, llm, "ASSAY_WORKERS=16")...)
	const n, size = 1000, 100
	start := time.Now()
	for i := 0; i < n; i += size {
		submitBatch(t, p, batchItems(i, size))
	}
	queued := time.Since(start)
	waitFor(t, 8*time.Minute, "1,000 gradings", func() bool {
		return queryInt(t, db, `SELECT count(*) FROM evaluations WHERE status IN ('completed', 'failed')`) == n
	})
	drain := time.Since(start)
	t.Logf("drained %d evaluations in %s (queued in %s; %.0f per second)", n, drain.Round(time.Millisecond), queued.Round(time.Millisecond), n/drain.Seconds())
	waitFor(t, 10*time.Second, "every grading job to be completed", func() bool {
		return queryInt(t, db, `SELECT count(*) FROM river_job WHERE kind = 'assay_grade' AND state = 'completed'`) == n
	})
	for _, tc := range []struct {
		what string
		sql  string
		want int
	}{
		{"evaluation rows", `SELECT count(*) FROM evaluations`, n},
		{"completed evaluations", `SELECT count(*) FROM evaluations WHERE status = 'completed' AND jsonb_array_length(body->'criteria') > 0`, n},
		{"distinct answers", `SELECT count(DISTINCT body->>'answer') FROM evaluations`, n},
		{"grading jobs", `SELECT count(*) FROM river_job WHERE kind = 'assay_grade'`, n},
		{"jobs run more than once", `SELECT count(*) FROM river_job WHERE kind = 'assay_grade' AND attempt <> 1`, 0},
	} {
		if got := queryInt(t, db, tc.sql); got != tc.want {
			t.Errorf("%s = %d, want %d", tc.what, got, tc.want)
		}
	}
	_, metrics := p.send(t, http.MethodGet, "/metrics", "")
	m := completedJobs.FindSubmatch(metrics)
	if m == nil || string(m[1]) != strconv.Itoa(n) {
		t.Errorf("metrics count %q completed gradings, want %d", m, n)
	}
	if !strings.Contains(string(metrics), "assay_queue_depth 0") {
		t.Error("metrics do not show an empty queue")
	}
}

// TestAsyncEventsAcrossProcesses accepts a request on a replica without
// workers and grades it on another: the first replica's stream still
// shows every stage, in order, through PostgreSQL NOTIFY.
func TestAsyncEventsAcrossProcesses(t *testing.T) {
	db := pgtest.NewDatabase(t)
	llm := mockLLM(t, "--latency", "1500ms")
	front := startProcess(t, llmEnv(db, llm, "ASSAY_WORKERS=0")...)
	back := startProcess(t, llmEnv(db, llm, "ASSAY_WORKERS=2")...)
	body := `{"question":"What is rate limiting and how do you implement it?","answer":"A token bucket per API key, kept in Redis, refilled at a steady rate; over the limit the API answers 429 with Retry-After."}`
	resp, b := front.send(t, http.MethodPost, "/v1/evaluations", body, "Prefer", "respond-async")
	var e struct{ ID, Status string }
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(b, &e) != nil || e.Status != "queued" {
		t.Fatalf("POST = %d %s", resp.StatusCode, b)
	}
	events := readSSE(t, front.base+"/v1/evaluations/"+e.ID+"/events")
	want := []string{"queued", "rubric_matched", "grading", "completed"}
	if got := eventNames(events); !slices.Equal(got, want) {
		t.Fatalf("events = %q, want %q", got, want)
	}
	last := events[len(events)-1].Data
	if last["id"] != e.ID || last["status"] != "completed" || len(last["criteria"].([]any)) == 0 {
		t.Errorf("completed event data = %v, want the full result", last)
	}
	if rubric := events[1].Data["rubric"].(map[string]any); rubric["id"] != "api-rate-limiting" {
		t.Errorf("rubric_matched event has rubric %v", rubric)
	}
	// The job outcome is counted after the worker returns, which can be
	// just after the completed event: wait a little for it.
	ran := func(p *process) bool {
		_, metrics := p.send(t, http.MethodGet, "/metrics", "")
		return completedJobs.Match(metrics)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !ran(back) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if !ran(back) {
		t.Error("the back replica did not count the grading job")
	}
	if ran(front) {
		t.Error("the front replica, with no workers, ran a grading job")
	}
	// A client that connects after the end gets the outcome at once.
	start := time.Now()
	late := readSSE(t, back.base+"/v1/evaluations/"+e.ID+"/events")
	if got := eventNames(late); !slices.Equal(got, []string{"completed"}) || time.Since(start) > 2*time.Second {
		t.Errorf("late stream = %q in %s, want completed at once", got, time.Since(start))
	}
}

// TestSSEDeadlineDoesNotCutStreams checks an event stream outlives the
// request deadline while the grading waits in the queue.
func TestSSEDeadlineDoesNotCutStreams(t *testing.T) {
	db := pgtest.NewDatabase(t)
	p := startProcess(t, "DATABASE_URL="+db, "ASSAY_WORKERS=0", "ASSAY_REQUEST_TIMEOUT=1s")
	resp, b := p.send(t, http.MethodPost, "/v1/evaluations", `{"answer":"An index is a B-tree that speeds up reads."}`, "Prefer", "respond-async")
	var e struct{ ID string }
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(b, &e) != nil {
		t.Fatalf("POST = %d %s", resp.StatusCode, b)
	}
	type result struct {
		events []sse
		err    error
	}
	streamed := make(chan result, 1)
	go func() {
		es, err := streamEvents(p.base + "/v1/evaluations/" + e.ID + "/events")
		streamed <- result{es, err}
	}()
	// Only a replica started 2.5s later has workers to grade it.
	time.Sleep(2500 * time.Millisecond)
	startProcess(t, "DATABASE_URL="+db, "ASSAY_WORKERS=1")
	r := <-streamed
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got := eventNames(r.events); len(got) == 0 || got[0] != "queued" || got[len(got)-1] != "completed" {
		t.Errorf("events = %q, want queued ... completed", got)
	}
	if span := r.events[len(r.events)-1].At.Sub(r.events[0].At); span < time.Second {
		t.Errorf("the stream lasted %s; the test meant it to outlive the 1s deadline", span)
	}
}
