package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/assay-dev/assay/internal/config"
	"github.com/assay-dev/assay/internal/embed"
	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/grader"
	"github.com/assay-dev/assay/internal/httpapi"
	"github.com/assay-dev/assay/internal/memory"
	"github.com/assay-dev/assay/internal/rubric"
	"github.com/assay-dev/assay/rubrics"
)

func serve(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := config.Load(args, getenv, stdout)
	if err != nil {
		return err
	}
	log, err := newLogger(cfg, stdout)
	if err != nil {
		return err
	}
	app, err := newApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer app.close()

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.Addr, err)
	}
	srv := &http.Server{
		Handler:           app.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       120 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	log.Info("listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// app is the wired server.
type app struct {
	handler http.Handler
	svc     *evaluation.Service
	closers []func()
}

func (a *app) close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
}

// newApp wires the adapters by hand: store, embedder, graders, service and
// router.
func newApp(ctx context.Context, cfg config.Config, log *slog.Logger) (*app, error) {
	bank, err := loadBank(cfg.RubricsDir)
	if err != nil {
		return nil, err
	}
	seed, err := rubric.Load(rubrics.FS)
	if err != nil {
		return nil, fmt.Errorf("embedded rubrics: %w", err)
	}
	a := &app{}
	var store evaluation.Store
	if cfg.DatabaseURL == "" {
		store = memory.New()
		log.Warn("no DATABASE_URL: using the in-memory store; nothing will be persisted")
	} else {
		return nil, errors.New("DATABASE_URL is set, but this build has no PostgreSQL store yet")
	}
	embedder := embed.NewLocalForBank(seed)
	graders := []evaluation.Grader{grader.Heuristic{}}
	svc := evaluation.NewService(store, embedder, graders, evaluation.Config{
		MatchThreshold: cfg.MatchThreshold,
		MaxAnswerRunes: cfg.MaxAnswerChars,
		DefaultGrader:  cfg.Grader,
	}, log)
	res, err := svc.SyncRubrics(ctx, bank)
	if err != nil {
		a.close()
		return nil, err
	}
	log.Info("rubrics loaded", "count", len(bank), "added", len(res.Added), "updated", len(res.Updated),
		"embedder", embedder.Model(), "graders", strings.Join(svc.GraderKinds(), ","))
	a.svc = svc
	a.handler = httpapi.New(svc, httpapi.Config{MaxBodyBytes: cfg.MaxBodyBytes}, log)
	return a, nil
}

// loadBank reads the rubrics from dir, or the embedded bank when dir is
// empty.
func loadBank(dir string) ([]rubric.Rubric, error) {
	var fsys fs.FS = rubrics.FS
	if dir != "" {
		fsys = os.DirFS(dir)
	}
	rs, err := rubric.Load(fsys)
	if err != nil {
		return nil, fmt.Errorf("loading rubrics from %s:\n%w", orEmbedded(dir), err)
	}
	return rs, nil
}

func orEmbedded(dir string) string {
	if dir == "" {
		return "the embedded bank"
	}
	return dir
}

func newLogger(cfg config.Config, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return nil, fmt.Errorf("log level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}
