package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/assay-dev/assay/internal/calibrate"
	"github.com/assay-dev/assay/internal/config"
	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/grader"
	"github.com/assay-dev/assay/internal/memory"
)

const evalRetrievalUsage = `Usage: api eval-retrieval --data PATH [--data PATH ...] [--json]

Measures rubric retrieval with the local embedder: each line of the data is
{"question": ..., "rubric_id": ...}; an empty rubric_id marks an off-topic
question that must match no rubric. PATH is a JSON Lines file, a directory
of them, or a glob. The bank is the embedded one, or ASSAY_RUBRICS_DIR; the
embedder is the active one (ASSAY_EMBEDDING_MODEL, else the local one);
the threshold is ASSAY_MATCH_THRESHOLD.

Flags:
`

func evalRetrievalCmd(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := commandFlags("eval-retrieval", evalRetrievalUsage, stdout)
	var paths []string
	fs.Func("data", "JSON Lines file, directory or glob of retrieval cases (repeatable)", func(v string) error {
		paths = append(paths, v)
		return nil
	})
	asJSON := fs.Bool("json", false, "print the report as one JSON object")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("eval-retrieval: unexpected argument %q", fs.Arg(0))
	case len(paths) == 0:
		return errors.New("eval-retrieval: --data PATH is required (for example --data testdata/retrieval)")
	}
	cfg, err := config.Load(nil, getenv, io.Discard)
	if err != nil {
		return err
	}
	files, err := calibrate.ExpandPaths(paths)
	if err != nil {
		return fmt.Errorf("eval-retrieval: %w", err)
	}
	cases, err := calibrate.ReadRetrievalCases(files)
	if err != nil {
		return fmt.Errorf("eval-retrieval: %w", err)
	}
	bank, err := loadBank(cfg.RubricsDir)
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for _, r := range bank {
		known[r.ID] = true
	}
	for _, c := range cases {
		if c.RubricID != "" && !known[c.RubricID] {
			return fmt.Errorf("eval-retrieval: %s expects rubric %q, which is not in %s", c.Source, c.RubricID, orEmbedded(cfg.RubricsDir))
		}
	}
	// The active embedder: ASSAY_EMBEDDING_MODEL's when set, else the
	// local one. The graders play no part in retrieval.
	embedder, err := newEmbedder(cfg)
	if err != nil {
		return err
	}
	svc := evaluation.NewService(memory.New(), embedder, []evaluation.Grader{grader.Heuristic{}}, evaluation.Config{
		MatchThreshold: cfg.MatchThreshold,
		MaxAnswerRunes: cfg.MaxAnswerChars,
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if _, err := svc.SyncRubrics(ctx, bank); err != nil {
		return err
	}
	rep, err := calibrate.EvalRetrieval(ctx, svc, cases, cfg.MatchThreshold)
	if err != nil {
		return fmt.Errorf("eval-retrieval: %w", err)
	}
	rep.Embedder = embedder.Model()
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.WriteText(stdout)
}
