package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/postgres"
)

// River is the durable queue: River jobs in Assay's own PostgreSQL
// database, inserted in the transaction that stores their evaluations.
// Every replica may insert; those with workers also run jobs, and River's
// leader rescues the jobs of a replica that died mid-job.
type River struct {
	store  *postgres.Store
	client *river.Client[pgx.Tx]
	cfg    Config
	runner Runner
}

var _ evaluation.Queue = (*River)(nil)

// gradeArgs is a grading job: the evaluation row and the request.
type gradeArgs struct {
	EvaluationID string             `json:"evaluation_id"`
	Request      evaluation.Request `json:"request"`
}

func (gradeArgs) Kind() string { return KindGrade }

type regradeArgs struct {
	BatchID string `json:"batch_id"`
}

func (regradeArgs) Kind() string { return KindRegrade }

type callbackArgs struct {
	EvaluationID string `json:"evaluation_id"`
}

func (callbackArgs) Kind() string { return KindCallback }

// NewRiver builds the River client on store's pool. Call Start with a
// Runner to work jobs.
func NewRiver(store *postgres.Store, cfg Config) (*River, error) {
	q := &River{store: store, cfg: cfg.withDefaults()}
	workers := river.NewWorkers()
	river.AddWorker(workers, &gradeWorker{q: q})
	river.AddWorker(workers, &regradeWorker{q: q})
	river.AddWorker(workers, &callbackWorker{q: q})
	rc := &river.Config{
		Workers:              workers,
		RescueStuckJobsAfter: q.cfg.RescueAfter,
		JobTimeout:           q.cfg.JobTimeout,
		Logger:               slog.New(warnHandler{q.cfg.Log.Handler()}),
	}
	if q.cfg.Workers > 0 {
		rc.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: q.cfg.Workers}}
	}
	client, err := river.NewClient(riverpgxv5.New(store.Pool()), rc)
	if err != nil {
		return nil, fmt.Errorf("creating the River client: %w", err)
	}
	q.client = client
	return q, nil
}

// Start works jobs with r, unless this replica has no workers. The client
// runs until Stop, whatever happens to ctx.
func (q *River) Start(ctx context.Context, r Runner) error {
	q.runner = r
	if q.cfg.Workers <= 0 {
		return nil
	}
	return q.client.Start(context.WithoutCancel(ctx))
}

// Stop stops fetching jobs and lets running ones finish until ctx ends;
// then it cancels them. A cancelled grading is retried (by this replica
// after a restart, or by another), never failed.
func (q *River) Stop(ctx context.Context) error {
	if q.cfg.Workers <= 0 {
		return nil
	}
	err := q.client.Stop(ctx)
	if err == nil {
		return nil
	}
	hard, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return errors.Join(err, q.client.StopAndCancel(hard))
}

// Enqueue implements evaluation.Queue: rows and jobs in one transaction.
func (q *River) Enqueue(ctx context.Context, b *evaluation.Batch, jobs []evaluation.Job) error {
	es := make([]evaluation.Evaluation, len(jobs))
	params := make([]river.InsertManyParams, len(jobs))
	// One more try than GradeAttempts: the worker fails the evaluation on
	// its last try itself, so River discarding a job (which would leave its
	// row running) takes a crash on that last try.
	opts := &river.InsertOpts{MaxAttempts: q.cfg.GradeAttempts + 1}
	for i, j := range jobs {
		es[i] = j.Evaluation
		params[i] = river.InsertManyParams{Args: gradeArgs{EvaluationID: j.Evaluation.ID, Request: j.Request}, InsertOpts: opts}
	}
	return q.store.CreateQueuedTx(ctx, b, es, func(ctx context.Context, tx pgx.Tx) error {
		_, err := q.client.InsertManyTx(ctx, tx, params)
		return err
	})
}

// EnqueueRegrade implements evaluation.Queue.
func (q *River) EnqueueRegrade(ctx context.Context, b evaluation.Batch) error {
	return q.store.CreateQueuedTx(ctx, &b, nil, func(ctx context.Context, tx pgx.Tx) error {
		_, err := q.client.InsertTx(ctx, tx, regradeArgs{BatchID: b.ID}, &river.InsertOpts{MaxAttempts: q.cfg.GradeAttempts})
		return err
	})
}

// EnqueueCallback implements evaluation.Queue. Unique by arguments: a
// grading job that runs again after finishing its evaluation does not send
// the webhook twice.
func (q *River) EnqueueCallback(ctx context.Context, id string) error {
	_, err := q.client.Insert(ctx, callbackArgs{EvaluationID: id}, &river.InsertOpts{
		MaxAttempts: q.cfg.CallbackAttempts,
		UniqueOpts:  river.UniqueOpts{ByArgs: true},
	})
	return err
}

// Depth implements evaluation.Queue: gradings not yet finished, on every
// replica.
func (q *River) Depth(ctx context.Context) (int, error) {
	var n int
	err := q.store.Pool().QueryRow(ctx, `
		SELECT count(*) FROM river_job
		WHERE kind = $1 AND state IN ('available', 'pending', 'retryable', 'running', 'scheduled')`, KindGrade).Scan(&n)
	return n, err
}

type gradeWorker struct {
	river.WorkerDefaults[gradeArgs]
	q *River
}

func (w *gradeWorker) Work(ctx context.Context, job *river.Job[gradeArgs]) error {
	err := w.q.runner.Grade(ctx, job.Args.EvaluationID, job.Args.Request)
	return settleGrade(ctx, w.q.runner, job.Args.EvaluationID, err, job.Attempt >= w.q.cfg.GradeAttempts)
}

func (w *gradeWorker) NextRetry(job *river.Job[gradeArgs]) time.Time {
	return time.Now().Add(backoff(w.q.cfg.RetryBase, job.Attempt))
}

type regradeWorker struct {
	river.WorkerDefaults[regradeArgs]
	q *River
}

func (w *regradeWorker) Work(ctx context.Context, job *river.Job[regradeArgs]) error {
	err := w.q.runner.FillRegrade(ctx, job.Args.BatchID)
	settleOther(w.q.runner, KindRegrade, err, job.Attempt >= job.MaxAttempts)
	return err
}

func (w *regradeWorker) NextRetry(job *river.Job[regradeArgs]) time.Time {
	return time.Now().Add(backoff(w.q.cfg.RetryBase, job.Attempt))
}

type callbackWorker struct {
	river.WorkerDefaults[callbackArgs]
	q *River
}

func (w *callbackWorker) Work(ctx context.Context, job *river.Job[callbackArgs]) error {
	err := w.q.runner.Callback(ctx, job.Args.EvaluationID)
	last := job.Attempt >= job.MaxAttempts
	settleOther(w.q.runner, KindCallback, err, last)
	if err != nil && last {
		w.q.cfg.Log.Warn("callback given up", "evaluation", job.Args.EvaluationID, "attempts", job.Attempt, "err", err)
	}
	return err
}

func (w *callbackWorker) NextRetry(job *river.Job[callbackArgs]) time.Time {
	return time.Now().Add(backoff(w.q.cfg.RetryBase, job.Attempt))
}

// warnHandler keeps River's routine info lines out of Assay's log.
type warnHandler struct{ slog.Handler }

func (h warnHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && h.Handler.Enabled(ctx, l)
}

func (h warnHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return warnHandler{h.Handler.WithAttrs(as)}
}

func (h warnHandler) WithGroup(name string) slog.Handler {
	return warnHandler{h.Handler.WithGroup(name)}
}
