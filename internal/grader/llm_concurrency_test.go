package grader

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/fault"
	"github.com/assay-dev/assay/internal/openaitest"
)

// countingTransport records the most requests it saw in flight at once.
type countingTransport struct {
	now, peak atomic.Int64
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	n := c.now.Add(1)
	defer c.now.Add(-1)
	for p := c.peak.Load(); n > p && !c.peak.CompareAndSwap(p, n); p = c.peak.Load() {
	}
	return http.DefaultTransport.RoundTrip(req)
}

func TestLLMMaxConcurrency(t *testing.T) {
	const limit, gradings = 2, 6
	srv := openaitest.New(t)
	r := testRubric(t)
	for range gradings {
		srv.Enqueue(openaitest.Chat(validReply(r).JSON()).Delayed(50 * time.Millisecond))
	}
	ct := &countingTransport{}
	l := newTestLLM(t, srv, func(c *LLMConfig) {
		c.MaxConcurrency, c.MaxSamples = limit, limit // the bound is at least MaxSamples
		c.HTTPClient = &http.Client{Transport: ct}
	})
	var wg sync.WaitGroup
	errs := make([]error, gradings)
	for i := range gradings {
		wg.Go(func() { _, errs[i] = gradeLLM(l, r, testAnswer) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("grading %d: %v", i, err)
		}
	}
	if got := ct.peak.Load(); got != limit {
		t.Errorf("peak calls in flight = %d, want %d", got, limit)
	}
	if got := len(srv.ChatRequests()); got != gradings {
		t.Errorf("chat requests = %d, want %d", got, gradings)
	}

	t.Run("a grading waiting for a slot gives up with its context", func(t *testing.T) {
		srv.Enqueue(openaitest.Chat(validReply(r).JSON()).Delayed(time.Second))
		holder := make(chan error, 1)
		go func() { _, err := gradeLLM(l, r, testAnswer); holder <- err }()
		// Two samples need both slots; one is taken for a second.
		for ct.now.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := l.Grade(ctx, evaluation.GradeInput{Rubric: r, Answer: testAnswer, Samples: 2})
		if got := fault.KindOf(err); got != fault.Unavailable || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got %v (kind %v), want unavailable wrapping the deadline", err, got)
		}
		if err := <-holder; err != nil {
			t.Errorf("the grading holding the slot: %v", err)
		}
	})
}
