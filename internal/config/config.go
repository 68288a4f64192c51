// Package config reads Assay's settings from environment variables, with
// command-line flags taking precedence. Every setting, its variable and its
// default is listed in the README's configuration table.
package config

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"
)

// Config is the whole configuration of the server.
type Config struct {
	Addr            string
	DatabaseURL     string
	RubricsDir      string
	MatchThreshold  float64
	MaxAnswerChars  int
	MaxBodyBytes    int64
	Grader          string
	LogLevel        string
	LogFormat       string
	ShutdownTimeout time.Duration
	RequestTimeout  time.Duration
	MaxGradings     int

	// LLM and embeddings, through any OpenAI-compatible endpoint.
	OpenAIAPIKey       string
	OpenAIBaseURL      string
	LLMModel           string
	LLMTemperature     float64
	LLMSeed            string
	LLMTimeout         time.Duration
	LLMMaxTokens       int
	LLMResponseFormat  string
	LLMMaxAttempts     int
	LLMPrices          string
	LLMMaxPromptTokens int
	LLMMaxConcurrency  int
	EmbeddingModel     string

	// Production API.
	RequireAuth    bool
	RateLimitRPS   float64
	RateLimitBurst int
	CORSOrigins    string

	// Background jobs and webhooks.
	Workers        int
	QueueLimit     int
	JobRescueAfter time.Duration
	WebhookSecret  string
	WebhookAllow   string
}

// setting is one configuration entry: its flag, variable, default and help.
type setting struct {
	flag, env, def, help string
	set                  func(string) error
}

func (c *Config) settings() []setting {
	return []setting{
		{"addr", "ASSAY_ADDR", ":8080", "listen address", str(&c.Addr)},
		{"database-url", "DATABASE_URL", "", "PostgreSQL URL; empty keeps everything in memory", str(&c.DatabaseURL)},
		{"rubrics-dir", "ASSAY_RUBRICS_DIR", "", "folder of rubric YAML files replacing the embedded bank", str(&c.RubricsDir)},
		{"match-threshold", "ASSAY_MATCH_THRESHOLD", "0.20", "lowest similarity at which a rubric matches a question", float(&c.MatchThreshold)},
		{"max-answer-chars", "ASSAY_MAX_ANSWER_CHARS", "10000", "longest answer accepted, in characters", integer(&c.MaxAnswerChars)},
		{"max-body-bytes", "ASSAY_MAX_BODY_BYTES", "262144", "largest request body accepted", int64v(&c.MaxBodyBytes)},
		{"grader", "ASSAY_GRADER", "", "default grader: heuristic, or llm when an LLM is configured", str(&c.Grader)},
		{"log-level", "ASSAY_LOG_LEVEL", "info", "debug, info, warn or error", str(&c.LogLevel)},
		{"log-format", "ASSAY_LOG_FORMAT", "text", "text or json", str(&c.LogFormat)},
		{"shutdown-timeout", "ASSAY_SHUTDOWN_TIMEOUT", "15s", "time in-flight requests get to finish on shutdown", duration(&c.ShutdownTimeout)},
		{"request-timeout", "ASSAY_REQUEST_TIMEOUT", "120s", "deadline of one request, grading included", duration(&c.RequestTimeout)},
		{"max-gradings", "ASSAY_MAX_GRADINGS", "1024", "evaluation requests in progress at once; more wait for a slot within their deadline (0: no bound)", integer(&c.MaxGradings)},
		{"openai-api-key", "OPENAI_API_KEY", "", "API key of the OpenAI-compatible endpoint (never logged)", str(&c.OpenAIAPIKey)},
		{"openai-base-url", "OPENAI_BASE_URL", "", "base URL of an OpenAI-compatible endpoint, e.g. http://localhost:11434/v1 for Ollama", str(&c.OpenAIBaseURL)},
		{"llm-model", "ASSAY_LLM_MODEL", "", "chat model of the LLM grader; setting it enables the llm grader and makes it the default", str(&c.LLMModel)},
		{"llm-temperature", "ASSAY_LLM_TEMPERATURE", "0", "sampling temperature; negative omits it (for models that reject it)", float(&c.LLMTemperature)},
		{"llm-seed", "ASSAY_LLM_SEED", "", "sampling seed sent to the model, empty for none", str(&c.LLMSeed)},
		{"llm-timeout", "ASSAY_LLM_TIMEOUT", "60s", "timeout of one LLM call", duration(&c.LLMTimeout)},
		{"llm-max-tokens", "ASSAY_LLM_MAX_TOKENS", "2000", "most completion tokens per grading", integer(&c.LLMMaxTokens)},
		{"llm-response-format", "ASSAY_LLM_RESPONSE_FORMAT", "json_schema", "json_schema (strict structured outputs), json_object, or text (fenced JSON) for servers without them", str(&c.LLMResponseFormat)},
		{"llm-max-attempts", "ASSAY_LLM_MAX_ATTEMPTS", "3", "calls per grading, retries of 429, 5xx and timeouts included", integer(&c.LLMMaxAttempts)},
		{"llm-prices", "ASSAY_LLM_PRICES", "", "USD per million prompt/completion tokens, e.g. gpt-4o-mini=0.15/0.60", str(&c.LLMPrices)},
		{"llm-max-prompt-tokens", "ASSAY_LLM_MAX_PROMPT_TOKENS", "6000", "refuse (422) a grading whose prompt would exceed this; negative for no limit", integer(&c.LLMMaxPromptTokens)},
		{"llm-max-concurrency", "ASSAY_LLM_MAX_CONCURRENCY", "1024", "most calls to the model in flight at once; more gradings wait for a slot (bounds memory and connections under a burst)", integer(&c.LLMMaxConcurrency)},
		{"embedding-model", "ASSAY_EMBEDDING_MODEL", "", "embedding model on the OpenAI-compatible endpoint; empty uses the built-in local embedder", str(&c.EmbeddingModel)},
		{"require-auth", "ASSAY_REQUIRE_AUTH", "false", "require an API key even when none exists", boolean(&c.RequireAuth)},
		{"rate-limit-rps", "ASSAY_RATE_LIMIT_RPS", "10", "default requests per second per API key (token refill rate)", float(&c.RateLimitRPS)},
		{"rate-limit-burst", "ASSAY_RATE_LIMIT_BURST", "20", "default burst per API key (bucket size)", integer(&c.RateLimitBurst)},
		{"cors-origins", "ASSAY_CORS_ORIGINS", "", "comma-separated origins allowed to call the API from a browser; * for any", str(&c.CORSOrigins)},
		{"workers", "ASSAY_WORKERS", "4", "background gradings this process runs at once; 0 runs none (the replica only accepts them)", integer(&c.Workers)},
		{"queue-limit", "ASSAY_QUEUE_LIMIT", "10000", "refuse new background gradings (503 with Retry-After) while this many wait or run; 0 for no limit", integer(&c.QueueLimit)},
		{"job-rescue-after", "ASSAY_JOB_RESCUE_AFTER", "3m", "run a job again when its worker has been silent this long (a crashed replica); PostgreSQL only", duration(&c.JobRescueAfter)},
		{"webhook-secret", "ASSAY_WEBHOOK_SECRET", "", "key that signs callbacks (HMAC-SHA256); empty refuses callback_url (never logged)", str(&c.WebhookSecret)},
		{"webhook-allow", "ASSAY_WEBHOOK_ALLOW", "", "comma-separated callback hosts (host, *.domain, IP or CIDR); when set only these, and they may be private", str(&c.WebhookAllow)},
	}
}

// Load reads the environment through getenv, then the flags in args.
func Load(args []string, getenv func(string) string, usage io.Writer) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("api", flag.ContinueOnError)
	fs.SetOutput(usage)
	for _, s := range c.settings() {
		v := s.def
		if e := getenv(s.env); e != "" {
			v = e
		}
		if err := s.set(v); err != nil {
			return c, fmt.Errorf("%s=%q: %w", s.env, v, err)
		}
		fs.Func(s.flag, fmt.Sprintf("%s (env %s, default %q)", s.help, s.env, s.def), s.set)
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return c, c.validate()
}

func (c *Config) validate() error {
	switch {
	case c.MatchThreshold < 0 || c.MatchThreshold > 1:
		return fmt.Errorf("match threshold must be between 0 and 1")
	case c.MaxAnswerChars < 1:
		return fmt.Errorf("max answer chars must be positive")
	case c.MaxBodyBytes < 1024:
		return fmt.Errorf("max body bytes must be at least 1024")
	case c.LogFormat != "text" && c.LogFormat != "json":
		return fmt.Errorf("log format must be text or json")
	case c.RateLimitRPS <= 0 || c.RateLimitBurst < 1:
		return fmt.Errorf("rate limit must have a positive rate and a burst of at least 1")
	case c.RequestTimeout <= 0:
		return fmt.Errorf("request timeout must be positive")
	case c.Workers < 0 || c.QueueLimit < 0:
		return fmt.Errorf("workers and queue limit must not be negative")
	case c.JobRescueAfter < time.Second:
		return fmt.Errorf("job rescue after must be at least 1s")
	case c.MaxGradings < 0:
		return fmt.Errorf("max gradings must not be negative")
	case c.LLMMaxConcurrency < 1:
		return fmt.Errorf("LLM max concurrency must be at least 1")
	}
	if c.LLMSeed != "" {
		if _, err := strconv.Atoi(c.LLMSeed); err != nil {
			return fmt.Errorf("ASSAY_LLM_SEED must be an integer")
		}
	}
	return nil
}

// Table returns the settings as rows of flag, variable, default and help,
// for the README and `api help`.
func Table() [][4]string {
	var c Config
	var rows [][4]string
	for _, s := range c.settings() {
		rows = append(rows, [4]string{"--" + s.flag, s.env, s.def, s.help})
	}
	return rows
}

func str(p *string) func(string) error { return func(v string) error { *p = v; return nil } }

func boolean(p *bool) func(string) error {
	return func(v string) (err error) { *p, err = strconv.ParseBool(v); return err }
}

func float(p *float64) func(string) error {
	return func(v string) (err error) { *p, err = strconv.ParseFloat(v, 64); return err }
}

func integer(p *int) func(string) error {
	return func(v string) (err error) { *p, err = strconv.Atoi(v); return err }
}

func int64v(p *int64) func(string) error {
	return func(v string) (err error) { *p, err = strconv.ParseInt(v, 10, 64); return err }
}

func duration(p *time.Duration) func(string) error {
	return func(v string) (err error) { *p, err = time.ParseDuration(v); return err }
}
