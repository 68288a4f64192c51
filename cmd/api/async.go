package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/assay-dev/assay/internal/config"
	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/httpapi"
	"github.com/assay-dev/assay/internal/jobs"
	"github.com/assay-dev/assay/internal/metrics"
	"github.com/assay-dev/assay/internal/webhook"
)

// workers is the background side of the app: the job queue's workers and,
// with PostgreSQL, the listener that feeds event streams. serve starts it
// with the HTTP server and stops it after, within the shutdown timeout.
type workers struct {
	start    func(ctx context.Context) error
	stop     func(ctx context.Context) error
	stopOnce sync.Once
}

// closeGrace bounds stopping the workers when the app closes without a
// graceful shutdown (start-up failed, or the listener died).
const closeGrace = 5 * time.Second

func (w *workers) Stop(ctx context.Context, log *slog.Logger) {
	w.stopOnce.Do(func() {
		if err := w.stop(ctx); err != nil {
			log.Warn("background jobs did not finish in time; the unfinished ones run again later", "err", err)
		}
	})
}

// wireAsync builds the queue (River on PostgreSQL, else the in-process
// pool), webhooks and event broker, and registers their metrics. It sets
// a.workers; the caller passes the results to the HTTP layer.
func wireAsync(cfg config.Config, log *slog.Logger, a *app, m *metrics.Metrics) (*evaluation.Async, httpapi.EventSource, error) {
	jcfg := jobs.Config{Workers: cfg.Workers, RescueAfter: cfg.JobRescueAfter, JobTimeout: cfg.RequestTimeout, Log: log}
	var callbacks evaluation.Callbacks
	if cfg.WebhookSecret != "" {
		wc, err := webhook.New(webhook.Config{Secret: cfg.WebhookSecret, Allow: splitList(cfg.WebhookAllow)})
		if err != nil {
			return nil, nil, err
		}
		callbacks = wc
	}
	broker := jobs.NewBroker()
	acfg := evaluation.AsyncConfig{QueueLimit: cfg.QueueLimit, Callbacks: callbacks, Problem: httpapi.ErrorProblem}
	var async *evaluation.Async
	if a.pg != nil {
		q, err := jobs.NewRiver(a.pg, jcfg)
		if err != nil {
			return nil, nil, err
		}
		acfg.Notifier, acfg.JobObserver = a.pg, metrics.NewJobs(m, q.Depth)
		async = evaluation.NewAsync(a.svc, q, acfg)
		listenCtx, stopListening := context.WithCancel(context.Background())
		a.workers = &workers{
			start: func(ctx context.Context) error {
				go a.pg.Listen(listenCtx, broker.Publish)
				if err := q.Start(ctx, async); err != nil {
					return fmt.Errorf("starting the job workers: %w", err)
				}
				log.Info("background jobs on River (PostgreSQL)", "workers", cfg.Workers, "rescue_after", cfg.JobRescueAfter.String())
				return nil
			},
			stop: func(ctx context.Context) error {
				defer stopListening()
				return q.Stop(ctx)
			},
		}
	} else {
		pool := jobs.NewPool(a.store, jcfg)
		acfg.Notifier, acfg.JobObserver = broker, metrics.NewJobs(m, pool.Depth)
		async = evaluation.NewAsync(a.svc, pool, acfg)
		a.workers = &workers{
			start: func(context.Context) error {
				pool.Start(async)
				log.Warn("background jobs run in an in-process pool: queued gradings are lost if the process stops", "workers", cfg.Workers)
				return nil
			},
			stop: pool.Stop,
		}
	}
	if cfg.Workers == 0 {
		log.Warn("ASSAY_WORKERS=0: this process accepts background gradings but runs none")
	}
	a.closers = append(a.closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), closeGrace)
		defer cancel()
		a.workers.Stop(ctx, log)
	})
	return async, broker, nil
}
