package jobs

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/assay-dev/assay/internal/evaluation"
)

// Pool is the in-memory queue: a fixed number of goroutines working a FIFO
// of tasks, with the same retries as River. Nothing survives the process;
// the server says so at start-up.
type Pool struct {
	store  evaluation.Store
	cfg    Config
	runner Runner

	mu      sync.Mutex
	cond    *sync.Cond
	tasks   []task
	waiting int // gradings queued, running or waiting for a retry
	stopped bool
	// called dedupes callbacks: each evaluation's is delivered once.
	called map[string]bool

	workCtx context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

type task struct {
	kind    string
	id      string
	req     evaluation.Request
	attempt int
}

var _ evaluation.Queue = (*Pool)(nil)

// NewPool returns a pool over store; Start it with a Runner.
func NewPool(store evaluation.Store, cfg Config) *Pool {
	p := &Pool{store: store, cfg: cfg.withDefaults(), called: map[string]bool{}}
	p.cond = sync.NewCond(&p.mu)
	p.workCtx, p.cancel = context.WithCancel(context.Background())
	return p
}

// Start runs the workers, which hand each task to r.
func (p *Pool) Start(r Runner) {
	p.runner = r
	for range p.cfg.Workers {
		p.wg.Add(1)
		go p.work()
	}
}

// Stop lets running tasks finish until ctx ends, then cancels them; tasks
// not started are dropped, as the process is going away with its memory.
func (p *Pool) Stop(ctx context.Context) error {
	p.mu.Lock()
	p.stopped = true
	dropped := len(p.tasks)
	p.tasks = nil
	p.cond.Broadcast()
	p.mu.Unlock()
	if dropped > 0 {
		p.cfg.Log.Warn("in-memory queue stopped with jobs not started; they are lost", "jobs", dropped)
	}
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	p.cancel()
	<-done
	return ctx.Err()
}

// Enqueue implements evaluation.Queue.
func (p *Pool) Enqueue(ctx context.Context, b *evaluation.Batch, jobs []evaluation.Job) error {
	es := make([]evaluation.Evaluation, len(jobs))
	for i, j := range jobs {
		es[i] = j.Evaluation
	}
	if err := p.store.CreateQueued(ctx, b, es); err != nil {
		return err
	}
	for _, j := range jobs {
		p.push(task{kind: KindGrade, id: j.Evaluation.ID, req: j.Request, attempt: 1})
	}
	return nil
}

// EnqueueRegrade implements evaluation.Queue.
func (p *Pool) EnqueueRegrade(ctx context.Context, b evaluation.Batch) error {
	if err := p.store.CreateQueued(ctx, &b, nil); err != nil {
		return err
	}
	p.push(task{kind: KindRegrade, id: b.ID, attempt: 1})
	return nil
}

// EnqueueCallback implements evaluation.Queue.
func (p *Pool) EnqueueCallback(_ context.Context, id string) error {
	p.mu.Lock()
	seen := p.called[id]
	p.called[id] = true
	p.mu.Unlock()
	if !seen {
		p.push(task{kind: KindCallback, id: id, attempt: 1})
	}
	return nil
}

// Depth implements evaluation.Queue.
func (p *Pool) Depth(context.Context) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waiting, nil
}

func (p *Pool) push(t task) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	if t.kind == KindGrade && t.attempt == 1 {
		p.waiting++
	}
	p.tasks = append(p.tasks, t)
	p.cond.Signal()
}

func (p *Pool) work() {
	defer p.wg.Done()
	for {
		p.mu.Lock()
		for len(p.tasks) == 0 && !p.stopped {
			p.cond.Wait()
		}
		if p.stopped {
			p.mu.Unlock()
			return
		}
		t := p.tasks[0]
		p.tasks = p.tasks[1:]
		p.mu.Unlock()
		p.run(t)
	}
}

// run does one task; a task to retry is pushed again after its backoff.
func (p *Pool) run(t task) {
	ctx, cancel := context.WithTimeout(p.workCtx, p.cfg.JobTimeout)
	defer cancel()
	var retry error
	switch t.kind {
	case KindGrade:
		err := p.runner.Grade(ctx, t.id, t.req)
		retry = settleGrade(ctx, p.runner, t.id, err, t.attempt >= p.cfg.GradeAttempts)
		if retry != nil && t.attempt >= p.cfg.GradeAttempts {
			retry = nil // recording the failure failed: nothing is left to try
		}
	case KindRegrade:
		retry = p.runner.FillRegrade(ctx, t.id)
		settleOther(p.runner, t.kind, retry, t.attempt >= p.cfg.GradeAttempts)
		if t.attempt >= p.cfg.GradeAttempts {
			retry = nil
		}
	case KindCallback:
		retry = p.runner.Callback(ctx, t.id)
		settleOther(p.runner, t.kind, retry, t.attempt >= p.cfg.CallbackAttempts)
		if t.attempt >= p.cfg.CallbackAttempts {
			if retry != nil {
				p.cfg.Log.Warn("callback given up", "evaluation", t.id, "attempts", t.attempt, "err", retry)
			}
			retry = nil
		}
	}
	if retry == nil || errors.Is(p.workCtx.Err(), context.Canceled) {
		if t.kind == KindGrade {
			p.mu.Lock()
			p.waiting--
			p.mu.Unlock()
		}
		return
	}
	if t.kind != KindCallback {
		p.cfg.Log.Warn("job failed; retrying", "kind", t.kind, "id", t.id, "attempt", t.attempt, "err", retry)
	}
	t.attempt++
	time.AfterFunc(backoff(p.cfg.RetryBase, t.attempt-1), func() { p.push(t) })
}
