package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/assay-dev/assay/internal/auth"
	"github.com/assay-dev/assay/internal/config"
	"github.com/assay-dev/assay/internal/embed"
	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/grader"
	"github.com/assay-dev/assay/internal/httpapi"
	"github.com/assay-dev/assay/internal/idempotency"
	"github.com/assay-dev/assay/internal/memory"
	"github.com/assay-dev/assay/internal/metrics"
	"github.com/assay-dev/assay/internal/postgres"
	"github.com/assay-dev/assay/internal/ratelimit"
	"github.com/assay-dev/assay/internal/rubric"
	"github.com/assay-dev/assay/rubrics"
	"github.com/assay-dev/assay/web"
)

// app is the wired server.
type app struct {
	handler http.Handler
	svc     *evaluation.Service
	store   evaluation.Store
	// The production parts, from PostgreSQL when configured so that every
	// replica shares them, else in memory.
	keys    auth.Store
	limiter ratelimit.Limiter
	idem    idempotency.Store
	closers []func()
	// pg is the PostgreSQL store when configured, for the job queue;
	// workers and closeStreams are the background side (async.go).
	pg           *postgres.Store
	workers      *workers
	closeStreams func()
}

func (a *app) close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
}

// newApp wires the adapters by hand: store, embedder, graders, service and
// router. Each choice is made once, here, from the configuration.
func newApp(ctx context.Context, cfg config.Config, log *slog.Logger) (*app, error) {
	a := &app{}
	ok := false
	defer func() {
		if !ok {
			a.close()
		}
	}()
	bank, err := loadBank(cfg.RubricsDir)
	if err != nil {
		return nil, err
	}
	if err := openStores(ctx, cfg, log, a); err != nil {
		return nil, err
	}
	embedder, err := newEmbedder(cfg)
	if err != nil {
		return nil, err
	}
	graders, err := newGraders(cfg, log)
	if err != nil {
		return nil, err
	}
	m := metrics.New()
	a.svc = evaluation.NewService(a.store, embedder, graders, evaluation.Config{
		MatchThreshold: cfg.MatchThreshold,
		MaxAnswerRunes: cfg.MaxAnswerChars,
		DefaultGrader:  cfg.Grader,
		Observer:       m,
	}, log)
	res, err := a.svc.SyncRubrics(ctx, bank)
	if err != nil {
		return nil, err
	}
	log.Info("rubrics synced", "count", len(bank), "added", len(res.Added), "updated", len(res.Updated),
		"embedder", embedder.Model(), "graders", strings.Join(a.svc.GraderKinds(), ","))
	async, events, err := wireAsync(cfg, log, a, m)
	if err != nil {
		return nil, err
	}
	authn := auth.NewAuthenticator(a.keys, cfg.RequireAuth)
	if open, err := authn.Open(ctx); err != nil {
		return nil, err
	} else if open {
		log.Warn("NO API KEYS EXIST: the API is OPEN to anyone who can reach it, with admin rights; create a key (api keys create) or set ASSAY_REQUIRE_AUTH=true")
	}
	srv := httpapi.New(a.svc, httpapi.Config{
		MaxBodyBytes:   cfg.MaxBodyBytes,
		RequestTimeout: cfg.RequestTimeout,
		MaxGradings:    cfg.MaxGradings,
		Auth:           authn,
		Limiter:        a.limiter,
		DefaultLimit:   ratelimit.Limit{RPS: cfg.RateLimitRPS, Burst: cfg.RateLimitBurst},
		Idempotency:    a.idem,
		CORSOrigins:    splitList(cfg.CORSOrigins),
		Metrics:        m,
		Web:            web.FS,
		Async:          async,
		Events:         events,
	}, log)
	a.handler, a.closeStreams = srv, srv.CloseStreams
	ok = true
	return a, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// openStores opens PostgreSQL (and migrates it) when DATABASE_URL is set,
// else the in-memory stores.
func openStores(ctx context.Context, cfg config.Config, log *slog.Logger, a *app) error {
	if cfg.DatabaseURL == "" {
		log.Warn("no DATABASE_URL: using the in-memory store; nothing will be persisted")
		a.store, a.keys, a.limiter, a.idem = memory.New(), memory.NewKeys(), ratelimit.NewMemory(), idempotency.NewMemory()
		return nil
	}
	pg, err := openPostgres(ctx, cfg, log)
	if err != nil {
		return err
	}
	a.closers = append(a.closers, pg.Close)
	log.Info("using PostgreSQL", "migrations", "applied")
	a.store, a.keys, a.idem, a.pg = pg, pg, pg, pg
	// One statement per burst of a bucket's requests, not per request;
	// past the timeout the limiter counts as down and requests pass.
	a.limiter = ratelimit.NewCoalescing(pg, 5*time.Second)
	return nil
}

func openPostgres(ctx context.Context, cfg config.Config, log *slog.Logger) (*postgres.Store, error) {
	pg, err := postgres.Open(ctx, cfg.DatabaseURL, log)
	if err != nil {
		return nil, fmt.Errorf("opening PostgreSQL: %w", err)
	}
	if err := pg.Migrate(ctx); err != nil {
		pg.Close()
		return nil, fmt.Errorf("migrating PostgreSQL: %w", err)
	}
	return pg, nil
}

// newEmbedder returns the OpenAI-compatible embedder when a model is
// configured, else the local one, whose idf weights come from the embedded
// seed bank so they are fixed per binary.
// Either remembers the vectors of the last 1,024 single texts (queries:
// mostly the bank's questions, asked again and again).
func newEmbedder(cfg config.Config) (evaluation.Embedder, error) {
	if cfg.EmbeddingModel != "" {
		return embed.NewCache(embed.NewOpenAI(openaiClient(cfg), cfg.EmbeddingModel), queryCacheSize), nil
	}
	seed, err := rubric.Load(rubrics.FS)
	if err != nil {
		return nil, fmt.Errorf("embedded rubrics: %w", err)
	}
	return embed.NewCache(embed.NewLocalForBank(seed), queryCacheSize), nil
}

// queryCacheSize bounds the query-vector cache: 1,024 vectors of the local
// embedder's 1,024 dimensions are 4 MB (keys are hashes, not texts).
const queryCacheSize = 1024

func openaiClient(cfg config.Config) *openai.Client {
	oc := openai.DefaultConfig(cfg.OpenAIAPIKey)
	if cfg.OpenAIBaseURL != "" {
		oc.BaseURL = strings.TrimRight(cfg.OpenAIBaseURL, "/")
	}
	return openai.NewClientWithConfig(oc)
}

// newGraders returns the heuristic grader and, when a model is configured,
// the LLM grader. The LLM grader is the default when configured, unless
// ASSAY_GRADER says otherwise.
func newGraders(cfg config.Config, log *slog.Logger) ([]evaluation.Grader, error) {
	graders := []evaluation.Grader{grader.Heuristic{}}
	if cfg.LLMModel == "" {
		if cfg.Grader == "llm" {
			return nil, fmt.Errorf("ASSAY_GRADER=llm needs ASSAY_LLM_MODEL")
		}
		return graders, nil
	}
	prices, err := grader.ParsePrices(cfg.LLMPrices)
	if err != nil {
		return nil, fmt.Errorf("ASSAY_LLM_PRICES: %w", err)
	}
	lc := grader.LLMConfig{
		BaseURL: cfg.OpenAIBaseURL, APIKey: cfg.OpenAIAPIKey, Model: cfg.LLMModel,
		Temperature: cfg.LLMTemperature, Timeout: cfg.LLMTimeout, MaxTokens: cfg.LLMMaxTokens,
		ResponseFormat: cfg.LLMResponseFormat, MaxAttempts: cfg.LLMMaxAttempts, Prices: prices,
		MaxPromptTokens: cfg.LLMMaxPromptTokens, MaxConcurrency: cfg.LLMMaxConcurrency, Logger: log,
	}
	if cfg.LLMSeed != "" {
		seed, _ := strconv.Atoi(cfg.LLMSeed) // checked by config
		lc.Seed = &seed
	}
	llm, err := grader.NewLLM(lc)
	if err != nil {
		return nil, err
	}
	if cfg.Grader == "" || cfg.Grader == "llm" {
		return []evaluation.Grader{llm, grader.Heuristic{}}, nil
	}
	return append(graders, llm), nil
}
