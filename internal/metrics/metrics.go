// Package metrics is Assay's Prometheus instrumentation: HTTP latency by
// route and status, grading latency, tokens and errors, retrieval
// similarity, evaluations by band, cache hits, rate limiting and the LLM
// circuit breaker.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/fault"
)

// Metrics holds the collectors, on a registry of its own (no global state).
type Metrics struct {
	reg         *prometheus.Registry
	requests    *prometheus.HistogramVec
	grading     *prometheus.HistogramVec
	tokens      *prometheus.CounterVec
	gradeErrors *prometheus.CounterVec
	similarity  prometheus.Histogram
	bands       *prometheus.CounterVec
	cacheHits   prometheus.Counter
	rateLimited prometheus.Counter
}

// New registers the collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "assay_http_request_duration_seconds", Help: "HTTP request latency by route, method and status.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route", "method", "status"}),
		grading: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "assay_grading_duration_seconds", Help: "Grader latency by grader kind and outcome.",
			Buckets: []float64{.0005, .001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"grader", "outcome"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "assay_llm_tokens_total", Help: "LLM tokens by kind (prompt, completion).",
		}, []string{"kind"}),
		gradeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "assay_grading_errors_total", Help: "Failed gradings by grader and error kind.",
		}, []string{"grader", "kind"}),
		similarity: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "assay_retrieval_similarity", Help: "Similarity of the best rubric found by retrieval.",
			Buckets: prometheus.LinearBuckets(0, 0.1, 11),
		}),
		bands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "assay_evaluations_total", Help: "Evaluations by band and whether the grading was reused from the cache.",
		}, []string{"band", "cached"}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "assay_evaluation_cache_hits_total", Help: "Evaluations served from the evaluation cache.",
		}),
		rateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "assay_rate_limited_total", Help: "Requests refused with 429.",
		}),
	}
	m.reg.MustRegister(m.requests, m.grading, m.tokens, m.gradeErrors, m.similarity, m.bands, m.cacheHits, m.rateLimited,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Register adds a collector, such as a gauge of the circuit breaker state.
func (m *Metrics) Register(c prometheus.Collector) { m.reg.MustRegister(c) }

// Request records one HTTP request.
func (m *Metrics) Request(route, method string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Observe(d.Seconds())
}

// RateLimited counts a 429.
func (m *Metrics) RateLimited() { m.rateLimited.Inc() }

var _ evaluation.Observer = (*Metrics)(nil)

// Graded implements evaluation.Observer.
func (m *Metrics) Graded(kind string, d time.Duration, u *evaluation.Usage, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "error"
		m.gradeErrors.WithLabelValues(kind, fault.KindOf(err).String()).Inc()
	}
	m.grading.WithLabelValues(kind, outcome).Observe(d.Seconds())
	if u != nil {
		m.tokens.WithLabelValues("prompt").Add(float64(u.Prompt))
		m.tokens.WithLabelValues("completion").Add(float64(u.Completion))
	}
}

// Matched implements evaluation.Observer.
func (m *Metrics) Matched(similarity float64) { m.similarity.Observe(similarity) }

// Evaluated implements evaluation.Observer.
func (m *Metrics) Evaluated(band string, cached bool) {
	m.bands.WithLabelValues(band, strconv.FormatBool(cached)).Inc()
	if cached {
		m.cacheHits.Inc()
	}
}
