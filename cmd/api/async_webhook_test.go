package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/assay-dev/assay/internal/postgres/pgtest"
	"github.com/assay-dev/assay/internal/webhook"
)

// receiver is a webhook endpoint that fails its first failures calls.
type receiver struct {
	mu       sync.Mutex
	failures int
	calls    []delivery
}

type delivery struct {
	at        time.Time
	signature string
	body      []byte
	status    int
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	status := http.StatusOK
	if len(r.calls) < r.failures {
		status = http.StatusInternalServerError
	}
	r.calls = append(r.calls, delivery{at: time.Now(), signature: req.Header.Get(webhook.SignatureHeader), body: body, status: status})
	w.WriteHeader(status)
}

func (r *receiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.calls...)
}

// TestWebhooks delivers a completed and a failed evaluation to receivers
// on this machine (allow-listed), checks the signature and the retries of
// a receiver that fails twice, and that callbacks to internal addresses
// are refused at request time.
func TestWebhooks(t *testing.T) {
	const secret = "test-webhook-secret"
	db := pgtest.NewDatabase(t)
	p := startProcess(t, "DATABASE_URL="+db, "ASSAY_WEBHOOK_SECRET="+secret, "ASSAY_WEBHOOK_ALLOW=127.0.0.1",
		"ASSAY_RATE_LIMIT_RPS=1000", "ASSAY_RATE_LIMIT_BURST=1000")
	flaky := &receiver{failures: 2}
	flakySrv := httptest.NewServer(flaky)
	defer flakySrv.Close()
	steady := &receiver{}
	steadySrv := httptest.NewServer(steady)
	defer steadySrv.Close()

	submit := func(body string) string {
		t.Helper()
		resp, b := p.send(t, http.MethodPost, "/v1/evaluations", body, "Prefer", "respond-async")
		var e struct{ ID string }
		if resp.StatusCode != http.StatusAccepted || json.Unmarshal(b, &e) != nil {
			t.Fatalf("POST = %d %s", resp.StatusCode, b)
		}
		return e.ID
	}
	completed := submit(`{"question":"What is rate limiting and how do you implement it?","answer":"A token bucket per API key in Redis; 429 with Retry-After.","callback_url":"` + flakySrv.URL + `/hooks/assay"}`)
	failed := submit(`{"rubric_id":"no-such-rubric","answer":"Anything.","callback_url":"` + steadySrv.URL + `/hook"}`)

	waitFor(t, 60*time.Second, "the third delivery", func() bool { return len(flaky.deliveries()) >= 3 })
	waitFor(t, 30*time.Second, "the failure's delivery", func() bool { return len(steady.deliveries()) >= 1 })
	time.Sleep(2 * time.Second) // a delivered callback is not sent again
	calls := flaky.deliveries()
	if len(calls) != 3 || calls[2].status != http.StatusOK {
		t.Fatalf("%d deliveries to the flaky receiver, want 3 (two failures, then success)", len(calls))
	}
	for i := 1; i < len(calls); i++ {
		if gap := calls[i].at.Sub(calls[i-1].at); gap < 500*time.Millisecond {
			t.Errorf("retry %d came %s after the previous try, want a backoff", i, gap)
		}
	}
	tests := []struct {
		name   string
		d      delivery
		id     string
		event  string
		status string
	}{
		{"completed", calls[2], completed, "evaluation.completed", "completed"},
		{"failed", steady.deliveries()[0], failed, "evaluation.failed", "failed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := webhook.Verify(secret, tc.d.signature, tc.d.body, time.Now(), 5*time.Minute); err != nil {
				t.Errorf("signature %q: %v", tc.d.signature, err)
			}
			if err := webhook.Verify("another secret", tc.d.signature, tc.d.body, time.Now(), 5*time.Minute); err == nil {
				t.Error("the signature verifies with another secret")
			}
			var payload struct {
				Event      string
				Evaluation struct {
					ID, Status string
					Error      *struct {
						Type   string
						Status int
					}
				}
			}
			if err := json.Unmarshal(tc.d.body, &payload); err != nil {
				t.Fatal(err)
			}
			if payload.Event != tc.event || payload.Evaluation.ID != tc.id || payload.Evaluation.Status != tc.status {
				t.Errorf("payload = %+v, want %s of %s", payload, tc.event, tc.id)
			}
			if tc.status == "failed" && (payload.Evaluation.Error == nil || payload.Evaluation.Error.Status != http.StatusUnprocessableEntity) {
				t.Errorf("failed evaluation's error = %+v, want the 422 problem", payload.Evaluation.Error)
			}
		})
	}

	// Internal targets are refused before anything is stored or sent.
	for _, tc := range []struct{ name, path, body, pointer string }{
		{"private address", "/v1/evaluations", `{"answer":"a","callback_url":"http://10.0.0.1/hook"}`, "/callback_url"},
		{"cloud metadata", "/v1/evaluations", `{"answer":"a","callback_url":"http://169.254.169.254/latest/meta-data"}`, "/callback_url"},
		{"not allow-listed", "/v1/evaluations", `{"answer":"a","callback_url":"https://hooks.example.com/x"}`, "/callback_url"},
		{"not http", "/v1/evaluations", `{"answer":"a","callback_url":"file:///etc/passwd"}`, "/callback_url"},
		{"batch item", "/v1/evaluations/batch", `{"items":[{"answer":"a","callback_url":"http://[::1]:8080/"}]}`, "/items/0/callback_url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := p.send(t, http.MethodPost, tc.path, tc.body, "Prefer", "respond-async")
			var prob struct {
				Type   string
				Errors []struct{ Pointer string }
			}
			_ = json.Unmarshal(b, &prob)
			if resp.StatusCode != http.StatusUnprocessableEntity || resp.Header.Get("Content-Type") != "application/problem+json" ||
				len(prob.Errors) != 1 || prob.Errors[0].Pointer != tc.pointer {
				t.Errorf("= %d %s, want a 422 problem at %s", resp.StatusCode, b, tc.pointer)
			}
		})
	}
	if rows := queryInt(t, db, `SELECT count(*) FROM evaluations`); rows != 2 {
		t.Errorf("%d evaluations stored, want only the 2 accepted", rows)
	}
}
