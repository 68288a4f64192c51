package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/assay-dev/assay/internal/calibrate"
	"github.com/assay-dev/assay/internal/config"
	"github.com/assay-dev/assay/internal/embed"
	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/memory"
	"github.com/assay-dev/assay/internal/rubric"
	"github.com/assay-dev/assay/rubrics"
)

const calibrateUsage = `Usage: api calibrate --data FILE.jsonl [flags]

Grades every human-graded answer in FILE.jsonl (one JSON object a line with
question, reference_answer, answer, score and score_max) through the
evaluation service with an inline rubric built from the reference answer,
and reports how Assay's scores agree with the human ones. Finished results
are appended to a state file as they come, so an interrupted run resumes
where it stopped; the state file lives in the user's cache directory, never
beside the data, which may be shared or read-only. Settings
(ASSAY_MAX_ANSWER_CHARS, ASSAY_LLM_MODEL, ...) come from the environment.

Flags:
`

// calibrateCmd runs `api calibrate`. The progress bar goes to the
// process's stderr; the report to stdout.
func calibrateCmd(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := commandFlags("calibrate", calibrateUsage, stdout)
	data := fs.String("data", "", "JSON Lines file of human-graded answers (required)")
	kind := fs.String("grader", "heuristic", "grader to calibrate: heuristic, or llm when an LLM is configured")
	concurrency := fs.Int("concurrency", runtime.GOMAXPROCS(0), "answers graded at once")
	state := fs.String("state", "", "state file of finished results (default: $XDG_CACHE_HOME/assay/calibrate/NAME-HASH.state, HASH from the data file's path)")
	noState := fs.Bool("no-state", false, "keep no state file: grade everything, resume nothing")
	fresh := fs.Bool("fresh", false, "delete the state file first and grade everything again")
	asJSON := fs.Bool("json", false, "print the report as one JSON object")
	worst := fs.Int("worst", 10, "how many questions to list by mean absolute error")
	quiet := fs.Bool("quiet", false, "no progress bar on stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("calibrate: unexpected argument %q", fs.Arg(0))
	case *data == "":
		return errors.New("calibrate: --data FILE.jsonl is required")
	case *concurrency < 1:
		return errors.New("calibrate: --concurrency must be at least 1")
	}
	cfg, err := config.Load(nil, getenv, io.Discard)
	if err != nil {
		return err
	}
	items, err := calibrate.ReadFile(*data)
	if err != nil {
		return err
	}
	svc, err := newCalibrationService(cfg)
	if err != nil {
		return err
	}
	if kinds := svc.GraderKinds(); !slices.Contains(kinds, *kind) {
		if *kind == "llm" {
			return errors.New("calibrate: no LLM configured: set ASSAY_LLM_MODEL (and OPENAI_BASE_URL, OPENAI_API_KEY) to calibrate the llm grader")
		}
		return fmt.Errorf("calibrate: unknown grader %q; available: %s", *kind, strings.Join(kinds, ", "))
	}
	statePath := *state
	switch {
	case *noState:
		statePath = ""
	case statePath == "":
		if statePath, err = defaultStatePath(*data, getenv); err != nil {
			return err
		}
	}
	if statePath != "" && *fresh {
		if err := os.Remove(statePath); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	var progress io.Writer = os.Stderr
	if *quiet {
		progress = nil
	} else if statePath != "" {
		fmt.Fprintf(progress, "state file: %s\n", statePath)
	}
	rep, err := calibrate.Run(ctx, svc, items, calibrate.Options{
		Grader: *kind, Concurrency: *concurrency, StatePath: statePath, Progress: progress, Worst: *worst,
	})
	if err != nil {
		return fmt.Errorf("calibrate: %w", err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	} else {
		err = rep.WriteText(stdout, *data)
	}
	if err != nil {
		return err
	}
	if rep.Failed > 0 {
		return fmt.Errorf("calibrate: %d answers could not be graded; run again to retry them", rep.Failed)
	}
	return nil
}

// newCalibrationService wires a service by hand, as newApp does, for
// grading against inline rubrics: the in-memory store (nothing is
// persisted), the local embedder (inline rubrics need no retrieval) and the
// configured graders: the heuristic one, and the LLM grader when
// ASSAY_LLM_MODEL is set. Its logs are discarded.
func newCalibrationService(cfg config.Config) (*evaluation.Service, error) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	seed, err := rubric.Load(rubrics.FS)
	if err != nil {
		return nil, fmt.Errorf("embedded rubrics: %w", err)
	}
	graders, err := newGraders(cfg, log)
	if err != nil {
		return nil, err
	}
	return evaluation.NewService(memory.New(), embed.NewLocalForBank(seed), graders, evaluation.Config{
		MatchThreshold: cfg.MatchThreshold,
		MaxAnswerRunes: cfg.MaxAnswerChars,
		DefaultGrader:  cfg.Grader,
	}, log), nil
}

// defaultStatePath is where a data file's state goes unless --state says
// otherwise: $XDG_CACHE_HOME/assay/calibrate (else ~/.cache/..., else the
// temporary directory), named after the data file and a hash of its
// absolute path, so two data sets never share a state file.
func defaultStatePath(data string, getenv func(string) string) (string, error) {
	base := getenv("XDG_CACHE_HOME")
	if base == "" {
		if home := getenv("HOME"); home != "" {
			base = filepath.Join(home, ".cache")
		} else {
			base = os.TempDir()
		}
	}
	abs, err := filepath.Abs(data)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(base, "assay", "calibrate")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("state directory: %w", err)
	}
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join(dir, fmt.Sprintf("%s-%x.state", filepath.Base(data), sum[:6])), nil
}
