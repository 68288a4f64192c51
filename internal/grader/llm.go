package grader

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	openai "github.com/sashabaranov/go-openai"
	"github.com/sony/gobreaker/v2"
	"golang.org/x/sync/semaphore"

	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/fault"
	"github.com/assay-dev/assay/internal/rubric"
)

// Response format modes of the LLM grader.
const (
	// FormatJSONSchema asks for strict structured outputs against a JSON
	// Schema generated from the rubric.
	FormatJSONSchema = "json_schema"
	// FormatJSONObject asks for a JSON object; the shape is in the prompt.
	FormatJSONObject = "json_object"
	// FormatText asks for a ```json fenced block in plain text, for
	// endpoints that support neither.
	FormatText = "text"
)

// Defaults of LLMConfig.
const (
	DefaultLLMBaseURL        = "https://api.openai.com/v1"
	DefaultLLMTimeout        = 60 * time.Second
	DefaultLLMMaxTokens      = 2000
	DefaultLLMMaxAttempts    = 3
	DefaultLLMBackoffBase    = 500 * time.Millisecond
	DefaultLLMBackoffMax     = 10 * time.Second
	DefaultLLMMaxRetryWait   = 30 * time.Second
	DefaultLLMMaxPromptTok   = 6000
	DefaultLLMMaxSamples     = 5
	DefaultLLMMaxConcurrency = 1024
	DefaultLLMSampleTemp     = 0.7
	DefaultBreakerFailures   = 5
	DefaultBreakerOpenPeriod = 30 * time.Second
)

// Price is what a model costs, in US dollars per million tokens.
type Price struct {
	PromptPerMTok     float64
	CompletionPerMTok float64
}

// ParsePrices reads a price table written as
// "model=prompt/completion,...", in US dollars per million tokens, such as
// "gpt-4o-mini=0.15/0.60,gpt-4o=2.50/10". Empty is an empty table.
func ParsePrices(s string) (map[string]Price, error) {
	out := map[string]Price{}
	for _, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		model, rest, ok := strings.Cut(entry, "=")
		p, c, ok2 := strings.Cut(rest, "/")
		if !ok || !ok2 || strings.TrimSpace(model) == "" {
			return nil, fmt.Errorf("price %q: want model=prompt/completion (USD per 1M tokens)", entry)
		}
		pp, err1 := strconv.ParseFloat(strings.TrimSpace(p), 64)
		cp, err2 := strconv.ParseFloat(strings.TrimSpace(c), 64)
		if err1 != nil || err2 != nil || pp < 0 || cp < 0 {
			return nil, fmt.Errorf("price %q: prices must be non-negative numbers", entry)
		}
		out[strings.TrimSpace(model)] = Price{PromptPerMTok: pp, CompletionPerMTok: cp}
	}
	return out, nil
}

// LLMConfig configures the LLM grader. Only Model is required; zero values
// take the defaults above.
type LLMConfig struct {
	// BaseURL of the OpenAI-compatible API, including /v1.
	BaseURL string
	// APIKey is sent as a bearer token; empty sends none (local servers).
	APIKey string
	// HTTPClient is the client to call with; its transport is wrapped to
	// read the Retry-After header of failed calls. Nil uses a new client
	// whose transport keeps MaxConcurrency idle connections to the model,
	// so that calls reuse connections instead of opening one each.
	HTTPClient *http.Client
	// Model is the chat model to grade with.
	Model string
	// Temperature of single gradings; 0 (greedy) by default. A negative
	// value sends none, for models that fix it (o-series, gpt-5).
	Temperature float64
	// SampleTemperature is used instead of a zero Temperature when a
	// request asks for several samples, which would otherwise agree
	// trivially. Default 0.7.
	SampleTemperature float64
	// Seed, when set, is sent for reproducible sampling; sample i of a
	// self-consistent grading uses Seed+i.
	Seed *int
	// Timeout bounds each call to the model. Default 60s.
	Timeout time.Duration
	// MaxTokens bounds the completion (max_completion_tokens). Default 2000.
	MaxTokens int
	// ResponseFormat is FormatJSONSchema (default), FormatJSONObject or
	// FormatText.
	ResponseFormat string
	// MaxAttempts bounds the calls for one completion, retries included.
	// Default 3.
	MaxAttempts int
	// BackoffBase is the first retry delay, doubled each retry with jitter
	// up to BackoffMax. Defaults 500ms and 10s.
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// MaxRetryWait is the longest Retry-After the grader waits for; a
	// longer one fails the grading at once as unavailable, passing the
	// wait on to the client. Default 30s.
	MaxRetryWait time.Duration
	// Prices maps a model name to its price, for Grading.CostUSD.
	Prices map[string]Price
	// MaxPromptTokens refuses, before any call, an answer whose prompt
	// would be longer (estimated). Default 6000; negative for no limit.
	MaxPromptTokens int
	// MaxSamples bounds GradeInput.Samples. Default 5.
	MaxSamples int
	// MaxConcurrency bounds the calls to the model in flight at once; a
	// grading over the bound waits for a slot, for as long as its context
	// lets it. It bounds the memory and the connections a burst of
	// gradings takes (each call holds a connection, its buffers and its
	// request), and the provider sees a steady queue rather than the
	// burst. Default 1024; raised to MaxSamples if below it.
	MaxConcurrency int
	// BreakerFailures is how many consecutive failed calls open the
	// circuit breaker, and BreakerOpenPeriod how long it stays open before
	// letting one call through. Defaults 5 and 30s.
	BreakerFailures   int
	BreakerOpenPeriod time.Duration
	// Prompts overrides the embedded templates (system.tmpl, user.tmpl).
	Prompts fs.FS
	// Logger receives retries, repairs and breaker changes. Default: none.
	Logger *slog.Logger
}

// LLM grades with a chat model through an OpenAI-compatible API: one
// completion per sample returns levels, evidence and follow-ups as JSON,
// which the grader validates against the rubric and the answer, repairs
// once if needed, and never scores.
type LLM struct {
	cfg     LLMConfig
	client  *openai.Client
	prompts *promptSet
	breaker *gobreaker.CircuitBreaker[openai.ChatCompletionResponse]
	opened  openClock
	log     *slog.Logger
	sleep   func(context.Context, time.Duration) error
	// rendered holds each rubric's system prompt and schema, by format.
	rendered map[string]*rubric.Memo[*rubricPart]
	// slots bounds the calls in flight (MaxConcurrency); a grading of n
	// samples takes n.
	slots *semaphore.Weighted
}

// renderedRubrics bounds the rendered prompts kept per format: a bank of a
// few hundred rubrics fits, at about 15 KB each.
const renderedRubrics = 512

// NewLLM checks the configuration, parses the prompt templates and builds
// the client and its circuit breaker.
func NewLLM(cfg LLMConfig) (*LLM, error) {
	if strings.TrimSpace(cfg.Model) == "" {
		return nil, errors.New("llm grader: no model configured")
	}
	cfg = withDefaults(cfg)
	switch cfg.ResponseFormat {
	case FormatJSONSchema, FormatJSONObject, FormatText:
	default:
		return nil, fmt.Errorf("llm grader: response format %q is not json_schema, json_object or text", cfg.ResponseFormat)
	}
	ps, err := loadPrompts(cfg.Prompts)
	if err != nil {
		return nil, fmt.Errorf("llm grader: %w", err)
	}
	oc := openai.DefaultConfig(cfg.APIKey)
	oc.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	hc := *cfg.HTTPClient // a copy: the caller's client keeps its transport
	hc.Transport = headerRecorder{next: hc.Transport}
	oc.HTTPClient = &hc
	l := &LLM{cfg: cfg, client: openai.NewClientWithConfig(oc), prompts: ps, log: cfg.Logger, sleep: sleepCtx,
		rendered: map[string]*rubric.Memo[*rubricPart]{}, slots: semaphore.NewWeighted(int64(cfg.MaxConcurrency))}
	for _, f := range []string{FormatJSONSchema, FormatJSONObject, FormatText} {
		l.rendered[f] = rubric.NewMemo[*rubricPart](renderedRubrics)
	}
	l.breaker = l.newBreaker()
	return l, nil
}

func withDefaults(c LLMConfig) LLMConfig {
	if c.BaseURL == "" {
		c.BaseURL = DefaultLLMBaseURL
	}
	setInt(&c.MaxSamples, DefaultLLMMaxSamples)
	setInt(&c.MaxConcurrency, DefaultLLMMaxConcurrency)
	c.MaxConcurrency = max(c.MaxConcurrency, c.MaxSamples)
	if c.HTTPClient == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		// Go's default keeps 2 idle connections per host, so under load
		// most calls would dial.
		t.MaxIdleConns = c.MaxConcurrency
		t.MaxIdleConnsPerHost = c.MaxConcurrency
		c.HTTPClient = &http.Client{Transport: t}
	}
	if c.SampleTemperature == 0 {
		c.SampleTemperature = DefaultLLMSampleTemp
	}
	setDur(&c.Timeout, DefaultLLMTimeout)
	setDur(&c.BackoffBase, DefaultLLMBackoffBase)
	setDur(&c.BackoffMax, DefaultLLMBackoffMax)
	setDur(&c.MaxRetryWait, DefaultLLMMaxRetryWait)
	setDur(&c.BreakerOpenPeriod, DefaultBreakerOpenPeriod)
	setInt(&c.MaxTokens, DefaultLLMMaxTokens)
	setInt(&c.MaxAttempts, DefaultLLMMaxAttempts)
	setInt(&c.BreakerFailures, DefaultBreakerFailures)
	if c.MaxPromptTokens == 0 {
		c.MaxPromptTokens = DefaultLLMMaxPromptTok
	}
	if c.ResponseFormat == "" {
		c.ResponseFormat = FormatJSONSchema
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func setDur(p *time.Duration, def time.Duration) {
	if *p <= 0 {
		*p = def
	}
}

func setInt(p *int, def int) {
	if *p <= 0 {
		*p = def
	}
}

// Kind implements evaluation.Grader.
func (*LLM) Kind() string { return "llm" }

// Model is the configured chat model.
func (l *LLM) Model() string { return l.cfg.Model }

// PromptVersion is the short hash of the prompt templates.
func (l *LLM) PromptVersion() string { return l.prompts.version }

// Grade implements evaluation.Grader. It renders the prompt, refuses an
// answer whose prompt is over the token ceiling, runs one or more samples
// and combines them. It never computes the score.
func (l *LLM) Grade(ctx context.Context, in evaluation.GradeInput) (evaluation.Grading, error) {
	n := in.Samples
	if n == 0 {
		n = 1
	}
	if n < 1 || n > l.cfg.MaxSamples {
		return evaluation.Grading{}, fault.Field("/samples", fmt.Sprintf("must be between 1 and %d", l.cfg.MaxSamples))
	}
	p, err := l.render(in, l.cfg.ResponseFormat)
	if err != nil {
		return evaluation.Grading{}, fmt.Errorf("rendering the prompt: %w", err)
	}
	if limit := l.cfg.MaxPromptTokens; limit > 0 && p.tokens > limit {
		return evaluation.Grading{}, fault.Field("/answer", fmt.Sprintf(
			"is too long to grade: its prompt would be about %d tokens, the limit is %d", p.tokens, limit))
	}
	if err := l.slots.Acquire(ctx, int64(n)); err != nil {
		return evaluation.Grading{}, cancelled(ctx, err)
	}
	defer l.slots.Release(int64(n))
	temp := l.temperature(n)
	results := make([]sampleResult, n)
	if n == 1 {
		// No goroutine for the common case: one less stack per grading
		// waiting on the model.
		results[0] = l.sample(ctx, p, 0, temp)
	} else {
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { results[i] = l.sample(ctx, p, i, temp) })
		}
		wg.Wait()
	}

	var ok []sampleResult
	var usage evaluation.Usage
	var firstErr error
	for _, r := range results {
		usage.Prompt += r.usage.Prompt
		usage.Completion += r.usage.Completion
		if r.err != nil {
			if firstErr == nil {
				firstErr = r.err
			}
			continue
		}
		ok = append(ok, r)
	}
	usage.Total = usage.Prompt + usage.Completion
	// A self-consistent grading survives a minority of failed samples.
	if len(ok) == 0 || len(ok) <= n/2 {
		return evaluation.Grading{}, firstErr
	}
	if firstErr != nil {
		l.log.Warn("llm grader: samples failed", "failed", n-len(ok), "samples", n, "err", firstErr)
	}
	g := combine(in.Rubric, ok)
	g.Flags = addFlag(g.Flags, injectionFlags(in.Answer)...)
	model := ok[0].model
	if model == "" {
		model = l.cfg.Model
	}
	g.Model = model
	g.PromptVersion = l.prompts.version
	if temp != nil {
		t := l.cfg.Temperature
		if t == 0 && n > 1 {
			t = l.cfg.SampleTemperature
		}
		g.Temperature = &t
	}
	if l.cfg.Seed != nil {
		s := *l.cfg.Seed
		g.Seed = &s
	}
	g.Usage = &usage
	g.CostUSD = l.cost(model, usage)
	return g, nil
}

// temperature returns the temperature to send, nil for none.
func (l *LLM) temperature(samples int) *float32 {
	t := l.cfg.Temperature
	switch {
	case t < 0:
		return nil
	case t == 0 && samples > 1:
		t = l.cfg.SampleTemperature
	}
	v := float32(t)
	return &v
}

// cost prices the usage with the configured table, by the configured model
// name first, then by the name the API answered with.
func (l *LLM) cost(model string, u evaluation.Usage) *float64 {
	p, ok := l.cfg.Prices[l.cfg.Model]
	if !ok {
		p, ok = l.cfg.Prices[model]
	}
	if !ok {
		return nil
	}
	c := (float64(u.Prompt)*p.PromptPerMTok + float64(u.Completion)*p.CompletionPerMTok) / 1e6
	c = float64(int64(c*1e8+0.5)) / 1e8
	return &c
}

func addFlag(flags []string, add ...string) []string {
	for _, f := range add {
		dup := false
		for _, g := range flags {
			dup = dup || g == f
		}
		if !dup {
			flags = append(flags, f)
		}
	}
	return flags
}

// Fingerprint implements evaluation.Fingerprinter: everything besides the
// rubric and the answer that changes what the model is asked.
func (l *LLM) Fingerprint() string {
	seed := "none"
	if l.cfg.Seed != nil {
		seed = strconv.Itoa(*l.cfg.Seed)
	}
	return fmt.Sprintf("%s|%s|%g|%s|%s", l.cfg.Model, l.prompts.version, l.cfg.Temperature, seed, l.cfg.ResponseFormat)
}
