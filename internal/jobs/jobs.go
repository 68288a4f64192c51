// Package jobs runs Assay's background work: gradings, regrades and
// webhook callbacks. On PostgreSQL it uses River, whose jobs are inserted
// in the same transaction as their evaluations and survive restarts and
// crashes; in memory an in-process worker pool gives the same API without
// durability. Both implement evaluation.Queue and share the retry rules
// here.
package jobs

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/assay-dev/assay/internal/evaluation"
)

// Runner does the work of each kind of job; *evaluation.Async implements
// it. Errors mean "try again" (see settle).
type Runner interface {
	Grade(ctx context.Context, id string, req evaluation.Request) error
	Fail(ctx context.Context, id string, cause error) error
	FillRegrade(ctx context.Context, id string) error
	Callback(ctx context.Context, id string) error
	Observe(kind, outcome string)
}

// Job kinds, as River stores them and metrics label them.
const (
	KindGrade    = "assay_grade"
	KindRegrade  = "assay_regrade"
	KindCallback = "assay_callback"
)

// Config tunes both queues.
type Config struct {
	// Workers is how many jobs run at once in this process; 0 runs none
	// (this replica only accepts requests).
	Workers int
	// GradeAttempts is how many times a grading is tried before its
	// evaluation fails; CallbackAttempts likewise for a webhook.
	GradeAttempts    int
	CallbackAttempts int
	// RetryBase is the first retry's delay; each retry doubles it.
	RetryBase time.Duration
	// RescueAfter is when River considers a running job abandoned by a
	// crashed worker and runs it again (PostgreSQL only).
	RescueAfter time.Duration
	// JobTimeout bounds one run of a job.
	JobTimeout time.Duration
	Log        *slog.Logger
}

// Defaults for Config's zero fields.
const (
	DefaultGradeAttempts    = 5
	DefaultCallbackAttempts = 8
	DefaultRetryBase        = time.Second
	DefaultRescueAfter      = 3 * time.Minute
	DefaultJobTimeout       = 2 * time.Minute
	// maxBackoff caps the delay between two tries.
	maxBackoff = 10 * time.Minute
	// failTimeout bounds recording a failure after the job's own context
	// has ended.
	failTimeout = 10 * time.Second
)

func (c Config) withDefaults() Config {
	if c.GradeAttempts <= 0 {
		c.GradeAttempts = DefaultGradeAttempts
	}
	if c.CallbackAttempts <= 0 {
		c.CallbackAttempts = DefaultCallbackAttempts
	}
	if c.RetryBase <= 0 {
		c.RetryBase = DefaultRetryBase
	}
	if c.RescueAfter <= 0 {
		c.RescueAfter = DefaultRescueAfter
	}
	if c.JobTimeout <= 0 {
		c.JobTimeout = DefaultJobTimeout
	}
	// River rescues a job that runs longer than RescueAfter, so a job must
	// give up well before that or it would run twice while still alive.
	if c.JobTimeout >= c.RescueAfter {
		c.JobTimeout = c.RescueAfter * 3 / 4
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c
}

// backoff is the delay before try attempt+1: base·2^(attempt-1), capped,
// with ±20% jitter so that jobs failing together do not retry together.
func backoff(base time.Duration, attempt int) time.Duration {
	d := base
	for i := 1; i < attempt && d < maxBackoff; i++ {
		d *= 2
	}
	d = min(d, maxBackoff)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// settleGrade decides what a grading's error means: nil completes the job;
// a retryable error (or a cancelled run, such as a shutdown) is returned
// to be tried again unless this was the last try; anything else fails the
// evaluation with the error, which completes the job. It returns the
// error the queue should retry on, if any.
func settleGrade(ctx context.Context, r Runner, id string, err error, last bool) error {
	if err == nil {
		r.Observe(KindGrade, evaluation.OutcomeCompleted)
		return nil
	}
	if (evaluation.Retryable(err) || ctx.Err() != nil) && !last {
		r.Observe(KindGrade, evaluation.OutcomeRetried)
		return err
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), failTimeout)
	defer cancel()
	if ferr := r.Fail(fctx, id, err); ferr != nil {
		return ferr
	}
	r.Observe(KindGrade, evaluation.OutcomeFailed)
	return nil
}

// settleOther records the outcome of a regrade or callback job; these
// are retried on any error until their attempts run out.
func settleOther(r Runner, kind string, err error, last bool) {
	switch {
	case err == nil:
		r.Observe(kind, evaluation.OutcomeCompleted)
	case last:
		r.Observe(kind, evaluation.OutcomeFailed)
	default:
		r.Observe(kind, evaluation.OutcomeRetried)
	}
}
