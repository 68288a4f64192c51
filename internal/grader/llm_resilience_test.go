package grader

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/fault"
	"github.com/assay-dev/assay/internal/openaitest"
)

func TestLLMRetries(t *testing.T) {
	r := testRubric(t)
	good := openaitest.Chat(validReply(r).JSON())
	tests := []struct {
		name      string
		script    []openaitest.Response
		mod       func(*LLMConfig)
		wantKind  fault.Kind // 0 (Internal) with wantErr false means success
		wantErr   bool
		requests  int
		minTime   time.Duration
		retryWait time.Duration // want fault RetryAfter at least this
	}{
		{name: "500 then success", script: []openaitest.Response{openaitest.ServerError(), good}, requests: 2},
		{name: "429 Retry-After honoured", script: []openaitest.Response{openaitest.RateLimited(150 * time.Millisecond), good},
			requests: 2, minTime: 150 * time.Millisecond},
		{name: "unreadable 502 body then success", script: []openaitest.Response{openaitest.Raw(502, "<html>bad gateway</html>"), good}, requests: 2},
		{name: "500 every time", script: []openaitest.Response{openaitest.ServerError(), openaitest.ServerError(), openaitest.ServerError()},
			wantErr: true, wantKind: fault.Upstream, requests: 3},
		{name: "503 every time", script: []openaitest.Response{openaitest.Error(503, "overloaded", "server_error", ""),
			openaitest.Error(503, "overloaded", "server_error", ""), openaitest.Error(503, "overloaded", "server_error", "")},
			wantErr: true, wantKind: fault.Unavailable, requests: 3},
		{name: "slow replies time out, retried, then fail",
			script: []openaitest.Response{good.Delayed(3 * time.Second), good.Delayed(3 * time.Second), good.Delayed(3 * time.Second)},
			mod:    func(c *LLMConfig) { c.Timeout = 200 * time.Millisecond }, wantErr: true, wantKind: fault.Unavailable, requests: 3},
		{name: "slow reply then a fast one", script: []openaitest.Response{good.Delayed(3 * time.Second), good},
			mod: func(c *LLMConfig) { c.Timeout = 200 * time.Millisecond }, requests: 2},
		{name: "400 not retried", script: []openaitest.Response{openaitest.Error(400, "Invalid schema for response_format", "invalid_request_error", "")},
			wantErr: true, wantKind: fault.Upstream, requests: 1},
		{name: "401 not retried", script: []openaitest.Response{openaitest.Error(401, "Incorrect API key provided", "invalid_request_error", "invalid_api_key")},
			wantErr: true, wantKind: fault.Upstream, requests: 1},
		{name: "Retry-After beyond the longest wait fails at once", script: []openaitest.Response{openaitest.RateLimited(90 * time.Second)},
			wantErr: true, wantKind: fault.Unavailable, requests: 1, retryWait: 89 * time.Second},
		{name: "429 every time passes its Retry-After on", script: []openaitest.Response{openaitest.RateLimited(10 * time.Millisecond),
			openaitest.RateLimited(10 * time.Millisecond), openaitest.RateLimited(2 * time.Second)},
			wantErr: true, wantKind: fault.Unavailable, requests: 3, retryWait: 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := openaitest.New(t)
			srv.Enqueue(tt.script...)
			l := newTestLLM(t, srv, tt.mod)
			start := time.Now()
			g, err := gradeLLM(l, r, testAnswer)
			elapsed := time.Since(start)
			if n := len(srv.ChatRequests()); n != tt.requests {
				t.Errorf("%d requests, want %d", n, tt.requests)
			}
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("Grade: %v", err)
				}
				if err := g.Check(r, testAnswer); err != nil {
					t.Fatal(err)
				}
				if elapsed < tt.minTime {
					t.Errorf("took %v, want at least %v (Retry-After)", elapsed, tt.minTime)
				}
				return
			}
			fe, ok := fault.As(err)
			if !ok || fe.Kind != tt.wantKind {
				t.Fatalf("err = %v (kind %v), want kind %v", err, fault.KindOf(err), tt.wantKind)
			}
			if contains(fe.Message, "Incorrect API key") || contains(fe.Message, "overloaded") || contains(fe.Message, "server had an error") {
				t.Errorf("message %q leaks the provider's error", fe.Message)
			}
			if fe.RetryAfter < tt.retryWait {
				t.Errorf("RetryAfter = %v, want at least %v", fe.RetryAfter, tt.retryWait)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	tests := []struct {
		header http.Header
		want   time.Duration
	}{
		{http.Header{"Retry-After": {"2"}}, 2 * time.Second},
		{http.Header{"Retry-After": {"0.25"}}, 250 * time.Millisecond},
		{http.Header{"Retry-After-Ms": {"120"}, "Retry-After": {"1"}}, 120 * time.Millisecond},
		{http.Header{"Retry-After": {"soon"}}, 0},
		{http.Header{}, 0},
	}
	for _, tt := range tests {
		if got := retryAfter(tt.header); got != tt.want {
			t.Errorf("retryAfter(%v) = %v, want %v", tt.header, got, tt.want)
		}
	}
	date := http.Header{"Retry-After": {time.Now().Add(3 * time.Second).UTC().Format(http.TimeFormat)}}
	if got := retryAfter(date); got < time.Second || got > 3*time.Second {
		t.Errorf("retryAfter(HTTP date in 3s) = %v", got)
	}
}

func TestBackoff(t *testing.T) {
	for attempt, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 9: time.Second} {
		for range 20 {
			if got := backoff(100*time.Millisecond, time.Second, attempt); got < want/2 || got > want {
				t.Errorf("backoff(attempt %d) = %v, want in [%v, %v]", attempt, got, want/2, want)
			}
		}
	}
}

func TestLLMCircuitBreaker(t *testing.T) {
	r := testRubric(t)
	srv := openaitest.New(t)
	l := newTestLLM(t, srv, func(c *LLMConfig) {
		c.MaxAttempts = 1
		c.BreakerFailures = 3
		c.BreakerOpenPeriod = 200 * time.Millisecond
	})
	for i := range 3 {
		srv.Enqueue(openaitest.ServerError())
		if _, err := gradeLLM(l, r, testAnswer); fault.KindOf(err) != fault.Upstream {
			t.Fatalf("call %d: err = %v, want upstream", i, err)
		}
	}
	start := time.Now()
	_, err := gradeLLM(l, r, testAnswer)
	fe, ok := fault.As(err)
	if !ok || fe.Kind != fault.Unavailable || fe.RetryAfter <= 0 || fe.RetryAfter > 200*time.Millisecond {
		t.Fatalf("open breaker: err = %v, want unavailable with a RetryAfter within the open period", err)
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("open breaker took %v to answer, want immediately", d)
	}
	if n := len(srv.ChatRequests()); n != 3 {
		t.Errorf("%d requests, want 3: none while open", n)
	}

	time.Sleep(250 * time.Millisecond) // half-open: one call goes through
	srv.Enqueue(openaitest.Chat(validReply(r).JSON()), openaitest.Chat(validReply(r).JSON()))
	for i := range 2 {
		if _, err := gradeLLM(l, r, testAnswer); err != nil {
			t.Fatalf("after the open period, call %d: %v", i, err)
		}
	}
	if n := len(srv.ChatRequests()); n != 5 {
		t.Errorf("%d requests, want 5", n)
	}
}

func TestLLMBreakerIgnoresClientErrors(t *testing.T) {
	r := testRubric(t)
	srv := openaitest.New(t)
	l := newTestLLM(t, srv, func(c *LLMConfig) { c.MaxAttempts = 1; c.BreakerFailures = 2 })
	for range 3 {
		srv.Enqueue(openaitest.Error(400, "bad request", "invalid_request_error", ""))
		if _, err := gradeLLM(l, r, testAnswer); fault.KindOf(err) != fault.Upstream {
			t.Fatalf("err = %v", err)
		}
	}
	if n := len(srv.ChatRequests()); n != 3 {
		t.Errorf("%d requests, want 3: a 400 must not open the breaker", n)
	}
}

func TestLLMContextCancelNotRetried(t *testing.T) {
	r := testRubric(t)
	srv := openaitest.New(t)
	srv.Enqueue(openaitest.Chat(validReply(r).JSON()).Delayed(5 * time.Second))
	l := newTestLLM(t, srv, func(c *LLMConfig) { c.Timeout = 10 * time.Second; c.MaxAttempts = 5 })
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := l.Grade(ctx, evaluation.GradeInput{Rubric: r, Answer: testAnswer})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("cancel took %v to take effect", d)
	}
	if n := len(srv.ChatRequests()); n != 1 {
		t.Errorf("%d requests, want 1: a cancelled call is not retried", n)
	}
	// Cancellations do not count against the breaker.
	if got := l.breaker.Counts().TotalFailures; got != 0 {
		t.Errorf("breaker failures = %d, want 0", got)
	}
}
