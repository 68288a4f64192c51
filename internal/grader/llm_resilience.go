package grader

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	openai "github.com/sashabaranov/go-openai"
	"github.com/sony/gobreaker/v2"

	"github.com/assay-dev/assay/internal/fault"
)

// complete runs one chat completion through the circuit breaker, retrying
// rate limits, server errors, timeouts and network failures with
// exponential backoff and jitter, or after the server's Retry-After. A
// cancelled context is never retried. Errors are *fault.Error values with
// client-safe messages; the provider's error is only their cause.
func (l *LLM) complete(ctx context.Context, req openai.ChatCompletionRequest) (openai.ChatCompletionResponse, error) {
	for attempt := 1; ; attempt++ {
		resp, err := l.attempt(ctx, req)
		if err == nil {
			return resp, nil
		}
		if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
			e := fault.Wrap(err, fault.Unavailable, "the grading model is unavailable after repeated failures; retry later")
			e.RetryAfter = l.opened.remaining(l.cfg.BreakerOpenPeriod)
			return resp, e
		}
		var ce *callError
		if !errors.As(err, &ce) {
			return resp, fault.Wrap(err, fault.Upstream, "the grading model failed")
		}
		if ce.canceled {
			return resp, cancelled(ctx, err)
		}
		if !ce.retryable() || attempt >= l.cfg.MaxAttempts {
			return resp, ce.fault()
		}
		wait := backoff(l.cfg.BackoffBase, l.cfg.BackoffMax, attempt)
		if ce.retryAfter > 0 {
			if ce.retryAfter > l.cfg.MaxRetryWait {
				return resp, ce.fault()
			}
			wait = ce.retryAfter
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return resp, ce.fault()
		}
		l.log.Info("llm grader: retrying", "attempt", attempt, "wait", wait.String(), "status", ce.status,
			"timeout", ce.timeout, "err", ce.err)
		if err := l.sleep(ctx, wait); err != nil {
			return resp, cancelled(ctx, err)
		}
	}
}

// attempt is one call, bounded by the per-call timeout.
func (l *LLM) attempt(ctx context.Context, req openai.ChatCompletionRequest) (openai.ChatCompletionResponse, error) {
	sink := &headerSink{}
	cctx, cancel := context.WithTimeout(context.WithValue(ctx, headerSinkKey{}, sink), l.cfg.Timeout)
	defer cancel()
	return l.breaker.Execute(func() (openai.ChatCompletionResponse, error) {
		resp, err := l.client.CreateChatCompletion(cctx, req)
		if err == nil {
			return resp, nil
		}
		ce := &callError{err: err, status: statusOf(err), retryAfter: retryAfter(sink.get())}
		switch {
		case ctx.Err() != nil:
			ce.canceled = true
		case errors.Is(cctx.Err(), context.DeadlineExceeded):
			ce.timeout = true
		}
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		ce.undecodable = ce.status == 0 && (errors.As(err, &se) || errors.As(err, &te))
		return resp, ce
	})
}

func cancelled(ctx context.Context, err error) error {
	cause := ctx.Err()
	if cause == nil {
		cause = err
	}
	return fault.Wrap(fmt.Errorf("%w (%v)", cause, err), fault.Unavailable, "the grading was cancelled")
}

// callError is a failed call to the model, classified.
type callError struct {
	err         error
	status      int // HTTP status, 0 when there was no response
	retryAfter  time.Duration
	timeout     bool // the per-call timeout fired
	canceled    bool // the caller's context ended
	undecodable bool // a 2xx response whose body is not a completion
}

func (e *callError) Error() string { return e.err.Error() }
func (e *callError) Unwrap() error { return e.err }

func (e *callError) retryable() bool {
	switch {
	case e.canceled, e.undecodable:
		return false
	case e.timeout, e.status == 0:
		return true
	default:
		return e.status == http.StatusTooManyRequests || e.status == http.StatusRequestTimeout || e.status >= 500
	}
}

// providerFailure says whether the error counts against the breaker: the
// provider is down or overloaded, not merely refusing one bad request.
func (e *callError) providerFailure() bool { return !e.canceled && e.retryable() }

// fault maps the final error to what a client sees.
func (e *callError) fault() *fault.Error {
	var f *fault.Error
	switch {
	case e.timeout:
		f = fault.Wrap(e, fault.Unavailable, "the grading model did not answer in time; retry later")
	case e.undecodable:
		f = fault.Wrap(e, fault.Upstream, "the grading model returned an unreadable response")
	case e.status == 0:
		f = fault.Wrap(e, fault.Unavailable, "the grading model cannot be reached; retry later")
	case e.status == http.StatusTooManyRequests:
		f = fault.Wrap(e, fault.Unavailable, "the grading model is rate limited; retry later")
	case e.status == http.StatusServiceUnavailable:
		f = fault.Wrap(e, fault.Unavailable, "the grading model is unavailable; retry later")
	case e.status >= 500:
		f = fault.Wrap(e, fault.Upstream, fmt.Sprintf("the grading model failed (HTTP %d)", e.status))
	default:
		f = fault.Wrap(e, fault.Upstream, fmt.Sprintf("the grading model rejected the request (HTTP %d)", e.status))
	}
	if f.Kind == fault.Unavailable {
		f.RetryAfter = e.retryAfter
	}
	return f
}

// statusOf returns the HTTP status of a go-openai error, 0 if none.
func statusOf(err error) int {
	var ae *openai.APIError
	if errors.As(err, &ae) {
		return ae.HTTPStatusCode
	}
	var re *openai.RequestError
	if errors.As(err, &re) {
		return re.HTTPStatusCode
	}
	return 0
}

// backoff is the wait before retry number attempt: base doubled per
// attempt, capped, with jitter over its upper half.
func backoff(base, ceiling time.Duration, attempt int) time.Duration {
	d := base << min(attempt-1, 30)
	if d <= 0 || d > ceiling {
		d = ceiling
	}
	half := d / 2
	return half + rand.N(half+1)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// retryAfter reads the wait a failed response asks for: retry-after-ms
// (OpenAI), else Retry-After in seconds (decimals accepted) or as an HTTP
// date. Zero when absent or unreadable.
func retryAfter(h http.Header) time.Duration {
	if h == nil {
		return 0
	}
	if v := strings.TrimSpace(h.Get("Retry-After-Ms")); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, time.Until(t))
	}
	return 0
}

// headerRecorder is a transport that hands each response's headers to the
// headerSink in its request's context, since go-openai's errors do not
// carry them.
type headerRecorder struct{ next http.RoundTripper }

type headerSinkKey struct{}

type headerSink struct {
	mu sync.Mutex
	h  http.Header
}

func (s *headerSink) get() http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.h
}

func (t headerRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	next := t.next
	if next == nil {
		next = http.DefaultTransport
	}
	resp, err := next.RoundTrip(req)
	if resp != nil {
		if s, ok := req.Context().Value(headerSinkKey{}).(*headerSink); ok {
			s.mu.Lock()
			s.h = resp.Header.Clone()
			s.mu.Unlock()
		}
	}
	return resp, err
}

// openClock remembers when the breaker last opened, for Retry-After.
type openClock struct{ at atomic.Int64 }

func (c *openClock) remaining(period time.Duration) time.Duration {
	at := c.at.Load()
	if at == 0 {
		return period
	}
	if d := time.Until(time.Unix(0, at).Add(period)); d > 0 {
		return d
	}
	return time.Second // half-open with its probe in flight
}

func (l *LLM) newBreaker() *gobreaker.CircuitBreaker[openai.ChatCompletionResponse] {
	failures := uint32(l.cfg.BreakerFailures)
	return gobreaker.NewCircuitBreaker[openai.ChatCompletionResponse](gobreaker.Settings{
		Name:        "llm " + l.cfg.Model,
		MaxRequests: 1,
		Timeout:     l.cfg.BreakerOpenPeriod,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= failures },
		OnStateChange: func(name string, from, to gobreaker.State) {
			if to == gobreaker.StateOpen {
				l.opened.at.Store(time.Now().UnixNano())
			}
			l.log.Warn("llm grader: circuit breaker", "name", name, "from", from.String(), "to", to.String())
		},
		IsSuccessful: func(err error) bool {
			var ce *callError
			return err == nil || (errors.As(err, &ce) && !ce.providerFailure())
		},
		IsExcluded: func(err error) bool {
			var ce *callError
			return errors.As(err, &ce) && ce.canceled
		},
	})
}
