package evaluation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/assay-dev/assay/internal/fault"
)

// Async grades in the background: a request is checked and stored as a
// queued evaluation at once, and a job grades it later, reporting its
// progress as events. It shares the Service's store, graders and rules, so
// a queued evaluation ends exactly as a synchronous one would.
type Async struct {
	svc   *Service
	queue Queue
	cfg   AsyncConfig
}

// Submission is one request to grade in the background.
type Submission struct {
	Request Request
	// CallbackURL, if set, receives the final evaluation.
	CallbackURL string
}

// DefaultMaxBatch is the most items a batch may have unless configured.
const DefaultMaxBatch = 100

// queueFullRetry is the Retry-After of a refusal for a full queue: long
// enough for a worker pool to make headway.
const queueFullRetry = 30 * time.Second

// NewAsync wires the asynchronous side of svc to a queue.
func NewAsync(svc *Service, q Queue, cfg AsyncConfig) *Async {
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	return &Async{svc: svc, queue: q, cfg: cfg}
}

// Submit checks a request and queues it; the evaluation it returns is
// queued.
func (a *Async) Submit(ctx context.Context, sub Submission) (Evaluation, error) {
	j, err := a.prepare(ctx, sub, "")
	if err != nil {
		return Evaluation{}, err
	}
	if err := a.admit(ctx, 1); err != nil {
		return Evaluation{}, err
	}
	if err := a.queue.Enqueue(ctx, nil, []Job{j}); err != nil {
		return Evaluation{}, fmt.Errorf("queueing evaluation: %w", err)
	}
	a.notify(ctx, j.Evaluation.ID, EventQueued)
	return j.Evaluation, nil
}

// SubmitBatch checks every item (reporting all bad fields, with pointers
// under /items/N) and queues them together, or none.
func (a *Async) SubmitBatch(ctx context.Context, subs []Submission, apiKeyID string) (Batch, []Evaluation, error) {
	switch {
	case len(subs) == 0:
		return Batch{}, nil, fault.Field("/items", "must have at least one item")
	case len(subs) > a.cfg.MaxBatch:
		return Batch{}, nil, fault.Field("/items", fmt.Sprintf("must have at most %d items; it has %d", a.cfg.MaxBatch, len(subs)))
	}
	b := Batch{ID: newID(), Kind: KindBatch, CreatedAt: a.svc.now().UTC().Truncate(time.Microsecond),
		APIKeyID: apiKeyID, Total: len(subs), Filled: true}
	jobs := make([]Job, 0, len(subs))
	var bad []fault.FieldError
	for i, sub := range subs {
		j, err := a.prepare(ctx, sub, "/items/"+strconv.Itoa(i))
		if fe, ok := fault.As(err); ok && fe.Kind == fault.Invalid {
			bad = append(bad, fe.Fields...)
			continue
		}
		if err != nil {
			return Batch{}, nil, err
		}
		j.Evaluation.BatchID = b.ID
		jobs = append(jobs, j)
	}
	if len(bad) > 0 {
		return Batch{}, nil, &fault.Error{Kind: fault.Invalid, Message: strings.TrimPrefix(bad[0].Pointer, "/") + " " + bad[0].Detail, Fields: bad}
	}
	if err := a.admit(ctx, len(jobs)); err != nil {
		return Batch{}, nil, err
	}
	if err := a.queue.Enqueue(ctx, &b, jobs); err != nil {
		return Batch{}, nil, fmt.Errorf("queueing batch: %w", err)
	}
	es := make([]Evaluation, len(jobs))
	for i, j := range jobs {
		es[i] = j.Evaluation
		a.notify(ctx, j.Evaluation.ID, EventQueued)
	}
	b.Counts = map[string]int{StatusQueued: len(jobs)}
	return b, es, nil
}

// Batch returns a batch with its counts and evaluations. With owner set,
// another key's batch is not found.
func (a *Async) Batch(ctx context.Context, id, owner string) (Batch, []Evaluation, error) {
	b, err := a.svc.store.Batch(ctx, id)
	if err == nil && owner != "" && b.APIKeyID != owner {
		err = NotFound("batch", id)
	}
	if err != nil {
		return Batch{}, nil, err
	}
	es, err := a.svc.store.BatchEvaluations(ctx, id)
	return b, es, err
}

// prepare validates a submission and makes its queued evaluation. Field
// pointers are prefixed with prefix, for batch items.
func (a *Async) prepare(ctx context.Context, sub Submission, prefix string) (Job, error) {
	req := sub.Request
	err := a.svc.validate(&req)
	if err == nil {
		if _, ok := a.svc.graders[req.Grader]; !ok {
			err = fault.Field("/grader", fmt.Sprintf("unknown grader %q; available: %s", req.Grader, strings.Join(a.svc.GraderKinds(), ", ")))
		}
	}
	if err == nil && sub.CallbackURL != "" {
		if a.cfg.Callbacks == nil {
			err = fault.Field("/callback_url", "callbacks are not enabled on this server (ASSAY_WEBHOOK_SECRET is not set)")
		} else {
			err = a.cfg.Callbacks.Check(ctx, sub.CallbackURL)
		}
	}
	if err != nil {
		return Job{}, prefixed(err, prefix)
	}
	e := a.svc.newEvaluation(req, RubricRef{})
	e.Status = StatusQueued
	e.CallbackURL = sub.CallbackURL
	e.Criteria, e.MissingPoints, e.Misconceptions, e.FollowUps, e.Flags =
		[]CriterionResult{}, []string{}, []MisconceptionFound{}, []FollowUp{}, []string{}
	return Job{Evaluation: e, Request: req}, nil
}

// prefixed moves the field pointers of an Invalid error under prefix.
func prefixed(err error, prefix string) error {
	fe, ok := fault.As(err)
	if !ok || prefix == "" || fe.Kind != fault.Invalid {
		return err
	}
	out := *fe
	out.Fields = make([]fault.FieldError, len(fe.Fields))
	for i, f := range fe.Fields {
		if f.Pointer != "" {
			f.Pointer = prefix + f.Pointer
		}
		out.Fields[i] = f
	}
	out.Message = strings.TrimPrefix(prefix, "/") + "/" + fe.Message
	return &out
}

// admit refuses n more gradings when the queue is at its limit.
func (a *Async) admit(ctx context.Context, n int) error {
	if a.cfg.QueueLimit <= 0 {
		return nil
	}
	depth, err := a.queue.Depth(ctx)
	if err != nil {
		return fmt.Errorf("measuring the queue: %w", err)
	}
	if depth+n > a.cfg.QueueLimit {
		return &fault.Error{Kind: fault.Unavailable, RetryAfter: queueFullRetry,
			Message: fmt.Sprintf("the grading queue is full (%d waiting, limit %d); retry later", depth, a.cfg.QueueLimit)}
	}
	return nil
}

// Grade is the job of one queued evaluation. It is idempotent: a finished
// evaluation is left alone, and the result is stored only if the row is
// still running, so two runs of one job store one result. Its error says
// whether to retry (Retryable) or Fail.
func (a *Async) Grade(ctx context.Context, id string, req Request) error {
	e, err := a.svc.store.Evaluation(ctx, id)
	if err != nil {
		return err
	}
	if final(e.Status) {
		return a.afterFinal(ctx, e) // a repeated run: make sure of the callback
	}
	e.Status = StatusRunning
	if ok, err := a.svc.store.UpdateEvaluation(ctx, e, StatusQueued, StatusRunning); err != nil || !ok {
		return err // !ok: finished meanwhile by another run
	}
	s := a.svc
	if err := s.validate(&req); err != nil {
		return err
	}
	grader, ok := s.graders[req.Grader]
	if !ok {
		return fault.Field("/grader", fmt.Sprintf("grader %q is no longer available", req.Grader))
	}
	r, ref, link, err := a.svc.rubricFor(ctx, req)
	if err != nil {
		return err
	}
	if link != nil {
		req.Question = link.Question
		e.Question = link.Question
	}
	e.Rubric, e.FollowUpOf = ref, link
	if e.Question == "" {
		e.Question = r.Question
	}
	if ok, err := s.store.UpdateEvaluation(ctx, e, StatusRunning); err != nil || !ok {
		return err
	}
	a.notify(ctx, id, EventRubricMatched)
	a.notify(ctx, id, EventGrading)
	cached, err := a.svc.gradeInto(ctx, &e, r, req, grader)
	if err != nil {
		return err
	}
	e.Status = StatusCompleted
	stored, err := s.store.UpdateEvaluation(ctx, e, StatusRunning)
	if err != nil || !stored {
		return err
	}
	s.cfg.Observer.Evaluated(e.Score.Band, cached)
	a.notify(ctx, id, EventCompleted)
	return a.afterFinal(ctx, e)
}

// Fail records that evaluation id failed with err, unless it has finished
// already. A missing evaluation has nothing to fail.
func (a *Async) Fail(ctx context.Context, id string, cause error) error {
	e, err := a.svc.store.Evaluation(ctx, id)
	if fault.KindOf(err) == fault.NotFound {
		return nil
	}
	if err != nil {
		return err
	}
	if final(e.Status) {
		return a.afterFinal(ctx, e)
	}
	p := a.problem(cause)
	e.Status, e.Error = StatusFailed, &p
	ok, err := a.svc.store.UpdateEvaluation(ctx, e, StatusQueued, StatusRunning)
	if err != nil || !ok {
		return err
	}
	a.svc.log.WarnContext(ctx, "evaluation failed", "evaluation", id, "kind", fault.KindOf(cause).String(), "err", cause)
	a.notify(ctx, id, EventFailed)
	return a.afterFinal(ctx, e)
}

func (a *Async) problem(err error) Problem {
	if a.cfg.Problem != nil {
		return a.cfg.Problem(err)
	}
	kind := fault.KindOf(err)
	p := Problem{Type: "about:blank", Title: kind.String(), Status: 500, Detail: "the grading failed"}
	if fe, ok := fault.As(err); ok && kind != fault.Internal {
		p.Detail, p.Errors = fe.Message, fe.Fields
	}
	return p
}

// afterFinal schedules the callback of a finished evaluation.
func (a *Async) afterFinal(ctx context.Context, e Evaluation) error {
	if e.CallbackURL == "" {
		return nil
	}
	return a.queue.EnqueueCallback(ctx, e.ID)
}

// CallbackPayload is the body of a webhook.
type CallbackPayload struct {
	// Event is evaluation.completed or evaluation.failed.
	Event      string     `json:"event"`
	Evaluation Evaluation `json:"evaluation"`
}

// Callback delivers evaluation id's final state to its callback URL; an
// error means try again later.
func (a *Async) Callback(ctx context.Context, id string) error {
	e, err := a.svc.store.Evaluation(ctx, id)
	if err != nil || e.CallbackURL == "" || !final(e.Status) {
		return err
	}
	if a.cfg.Callbacks == nil {
		return errors.New("callbacks are not enabled on this server")
	}
	body, err := json.Marshal(CallbackPayload{Event: "evaluation." + e.Status, Evaluation: e})
	if err != nil {
		return err
	}
	return a.cfg.Callbacks.Send(ctx, e.CallbackURL, body)
}

// Observe reports a job's outcome to the configured observer.
func (a *Async) Observe(kind, outcome string) {
	if a.cfg.JobObserver != nil {
		a.cfg.JobObserver.Job(kind, outcome)
	}
}

// notify publishes an event; a lost event only delays a stream, which
// re-reads the evaluation on its heartbeat, so failures are logged.
func (a *Async) notify(ctx context.Context, id, name string) {
	if a.cfg.Notifier == nil {
		return
	}
	if err := a.cfg.Notifier.Notify(ctx, Event{EvaluationID: id, Name: name}); err != nil {
		a.svc.log.WarnContext(ctx, "publishing an evaluation event", "evaluation", id, "event", name, "err", err)
	}
}

func final(status string) bool { return status == StatusCompleted || status == StatusFailed }

func newID() string { return uuid.Must(uuid.NewV7()).String() }
