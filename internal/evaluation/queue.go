package evaluation

import (
	"context"
	"time"

	"github.com/assay-dev/assay/internal/fault"
)

// Job is one queued grading: the evaluation row that stands for it and the
// request to grade, kept with the job because an evaluation does not
// record everything a request asked for (inline rubric, grader, samples).
type Job struct {
	Evaluation Evaluation
	Request    Request
}

// Queue schedules background work. internal/jobs implements it on River
// (PostgreSQL: durable, shared by replicas) and on an in-process pool
// (memory: same API, lost on restart).
type Queue interface {
	// Enqueue stores b (unless nil) and the queued evaluations of jobs and
	// schedules their grading, atomically: a job never exists without its
	// row, nor a row without its job.
	Enqueue(ctx context.Context, b *Batch, jobs []Job) error
	// EnqueueRegrade stores the regrade batch b and schedules the job that
	// creates its evaluations.
	EnqueueRegrade(ctx context.Context, b Batch) error
	// EnqueueCallback schedules the delivery of evaluation id's final state
	// to its callback URL; scheduling it twice delivers it once.
	EnqueueCallback(ctx context.Context, id string) error
	// Depth counts the gradings waiting or running.
	Depth(ctx context.Context) (int, error)
}

// Event names, in the order an evaluation goes through them.
const (
	EventQueued        = "queued"
	EventRubricMatched = "rubric_matched"
	EventGrading       = "grading"
	EventCompleted     = "completed"
	EventFailed        = "failed"
)

// EventRank orders event names: a stream never goes back to a lower rank.
// Unknown names rank 0.
func EventRank(name string) int {
	switch name {
	case EventRubricMatched:
		return 1
	case EventGrading:
		return 2
	case EventCompleted, EventFailed:
		return 3
	}
	return 0
}

// Event tells that an evaluation reached a stage. It carries no result: a
// listener re-reads the evaluation, so an event may cross processes
// (PostgreSQL NOTIFY) and never be stale.
type Event struct {
	EvaluationID string `json:"id"`
	Name         string `json:"event"`
}

// Notifier publishes events to whoever follows the evaluation, in this
// process or another.
type Notifier interface {
	Notify(ctx context.Context, ev Event) error
}

// Callbacks checks and delivers webhook callbacks (internal/webhook).
type Callbacks interface {
	// Check returns a fault.Invalid error, with pointer /callback_url, for
	// a URL the server must not call.
	Check(ctx context.Context, url string) error
	// Send POSTs body, signed, to url; an error means try again later.
	Send(ctx context.Context, url string, body []byte) error
}

// Problem is an RFC 9457 problem object stored in a failed evaluation.
type Problem struct {
	Type   string             `json:"type"`
	Title  string             `json:"title"`
	Status int                `json:"status"`
	Detail string             `json:"detail,omitempty"`
	Errors []fault.FieldError `json:"errors,omitempty"`
}

// RegradeLink names the evaluation a regrade grades again, with the score
// it had, so a regrade report needs no second read.
type RegradeLink struct {
	EvaluationID  string `json:"evaluation_id"`
	RubricVersion int    `json:"rubric_version"`
	Score         Score  `json:"score"`
}

// Batch kinds.
const (
	KindBatch   = "batch"
	KindRegrade = "regrade"
)

// Batch is a group of asynchronous evaluations: a client's batch, or the
// regrade of a rubric's past evaluations.
type Batch struct {
	ID        string    `json:"id"`
	Kind      string    `json:"kind"`
	CreatedAt time.Time `json:"created_at"`
	APIKeyID  string    `json:"api_key_id,omitempty"`
	// RubricID and RubricVersion are the rubric a regrade grades against.
	RubricID      string `json:"rubric_id,omitempty"`
	RubricVersion int    `json:"rubric_version,omitempty"`
	// Total is how many evaluations the batch has; Filled is false while a
	// regrade is still creating them.
	Total  int  `json:"total"`
	Filled bool `json:"filled"`
	// Counts has the number of evaluations by status, filled by reads.
	Counts map[string]int `json:"counts"`
}

// Status is "completed" once every evaluation is completed or failed, else
// "running".
func (b Batch) Status() string {
	if !b.Filled || b.Counts[StatusQueued]+b.Counts[StatusRunning] > 0 {
		return StatusRunning
	}
	return StatusCompleted
}

// AsyncConfig holds what the asynchronous side needs beyond the Service.
type AsyncConfig struct {
	// QueueLimit refuses new work (503 with Retry-After) while the queue
	// holds this many gradings; 0 means no limit.
	QueueLimit int
	// MaxBatch is the most items a batch may have.
	MaxBatch int
	// Callbacks checks and sends webhooks; nil refuses callback_url.
	Callbacks Callbacks
	// Notifier publishes progress; nil publishes nothing.
	Notifier Notifier
	// Problem turns the error of a failed job into the problem stored in
	// the evaluation, through the HTTP layer's one table
	// (httpapi.ErrorProblem); nil uses a plain fallback.
	Problem func(error) Problem
	// JobObserver, if set, is told the outcome of every job.
	JobObserver JobObserver
}

// JobObserver is told what background jobs do, for metrics.
type JobObserver interface {
	Job(kind, outcome string)
}

// Job outcomes.
const (
	OutcomeCompleted = "completed"
	OutcomeFailed    = "failed"
	OutcomeRetried   = "retried"
)

// Retryable reports whether a failed job should be tried again: provider
// and database outages and bad replies may pass; a bad request will not.
func Retryable(err error) bool {
	switch fault.KindOf(err) {
	case fault.Unavailable, fault.Upstream:
		return true
	}
	return false
}
