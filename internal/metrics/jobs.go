package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/assay-dev/assay/internal/evaluation"
)

// Jobs instruments the background queue: its depth, read when scraped,
// and the outcome of every job.
type Jobs struct {
	outcomes *prometheus.CounterVec
}

var _ evaluation.JobObserver = (*Jobs)(nil)

// depthTimeout bounds the queue count a scrape makes, so a slow database
// cannot hang /metrics.
const depthTimeout = 2 * time.Second

// NewJobs registers the queue's collectors on m. depth counts the
// gradings waiting or running (on every replica, with PostgreSQL).
func NewJobs(m *Metrics, depth func(context.Context) (int, error)) *Jobs {
	j := &Jobs{outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "assay_jobs_total", Help: "Background jobs run by this process, by kind and outcome (completed, failed, retried).",
	}, []string{"kind", "outcome"})}
	gauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "assay_queue_depth", Help: "Gradings queued or running; -1 when it cannot be read.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), depthTimeout)
		defer cancel()
		n, err := depth(ctx)
		if err != nil {
			return -1
		}
		return float64(n)
	})
	m.Register(j.outcomes)
	m.Register(gauge)
	return j
}

// Job implements evaluation.JobObserver.
func (j *Jobs) Job(kind, outcome string) { j.outcomes.WithLabelValues(kind, outcome).Inc() }
