// Package calibrate measures how well a grader agrees with human grades:
// it grades a file of human-graded answers through the evaluation service,
// maps Assay's 0-100 score onto the human scale and computes agreement
// metrics. It also measures rubric retrieval (retrieval.go). `api
// calibrate` and `api eval-retrieval` are its commands; docs/quality.md has
// the figures.
package calibrate

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/assay-dev/assay/internal/evaluation"
)

// Item is one human-graded answer: a line of the calibration file.
type Item struct {
	// Line is the 1-based line number in the file.
	Line int `json:"-"`
	// QuestionID groups answers by question in the report; the question's
	// text does when it is empty.
	QuestionID      string  `json:"question_id,omitempty"`
	Question        string  `json:"question"`
	ReferenceAnswer string  `json:"reference_answer"`
	Answer          string  `json:"answer"`
	Score           float64 `json:"score"`
	ScoreMax        float64 `json:"score_max"`
}

// group is the key the report groups answers by.
func (it Item) group() string {
	if it.QuestionID != "" {
		return it.QuestionID
	}
	return it.Question
}

// key identifies what is graded, so a state file only ever serves the same
// grader the same question, reference and answer.
func (it Item) key(grader string) string {
	h := sha256.New()
	for _, s := range []string{grader, it.Question, it.ReferenceAnswer, it.Answer} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:24]
}

// ReadItems reads a calibration file: JSON Lines, each with question,
// reference_answer, answer, score and score_max (the scale runs from 0 to
// score_max). Other fields are ignored, except question_id. Blank lines
// are skipped; any other bad line is an error naming its number.
func ReadItems(r io.Reader) ([]Item, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
	var out []Item
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var raw struct {
			QuestionID      json.RawMessage `json:"question_id"`
			Question        *string         `json:"question"`
			ReferenceAnswer *string         `json:"reference_answer"`
			Answer          *string         `json:"answer"`
			Score           *float64        `json:"score"`
			ScoreMax        *float64        `json:"score_max"`
		}
		if err := json.Unmarshal([]byte(line), &raw); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		var missing []string
		for name, ok := range map[string]bool{"question": raw.Question != nil, "reference_answer": raw.ReferenceAnswer != nil,
			"answer": raw.Answer != nil, "score": raw.Score != nil, "score_max": raw.ScoreMax != nil} {
			if !ok {
				missing = append(missing, name)
			}
		}
		if len(missing) > 0 {
			slices.Sort(missing)
			return nil, fmt.Errorf("line %d: missing %s", n, strings.Join(missing, ", "))
		}
		it := Item{Line: n, QuestionID: idString(raw.QuestionID), Question: *raw.Question, ReferenceAnswer: *raw.ReferenceAnswer,
			Answer: *raw.Answer, Score: *raw.Score, ScoreMax: *raw.ScoreMax}
		switch {
		case !(it.ScoreMax > 0) || math.IsInf(it.ScoreMax, 0):
			return nil, fmt.Errorf("line %d: score_max must be greater than 0, got %v", n, it.ScoreMax)
		case it.Score < 0 || it.Score > it.ScoreMax || math.IsNaN(it.Score):
			return nil, fmt.Errorf("line %d: score must be from 0 to score_max (%v), got %v", n, it.ScoreMax, it.Score)
		}
		out = append(out, it)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// ReadFile reads a calibration file by name.
func ReadFile(name string) ([]Item, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	items, err := ReadItems(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return items, nil
}

// idString accepts a question id written as a string or a number.
func idString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return strings.TrimSpace(string(raw))
}

// Evaluator grades one answer; *evaluation.Service is one.
type Evaluator interface {
	Evaluate(ctx context.Context, req evaluation.Request) (evaluation.Evaluation, error)
}

// Options tune a run.
type Options struct {
	// Grader is the grader kind each request names.
	Grader string
	// Concurrency is how many answers are graded at once; 0 means
	// GOMAXPROCS.
	Concurrency int
	// StatePath, when set, is a JSON Lines file of finished results: each
	// result is appended as soon as it is graded, and results already in it
	// are not graded again, so an interrupted run resumes where it stopped.
	StatePath string
	// Progress, when set, receives a progress bar.
	Progress io.Writer
	// Worst is how many questions the report lists by mean absolute error;
	// 0 means 10.
	Worst int
}

// Result is one graded answer, as kept in the state file.
type Result struct {
	Key     string  `json:"key"`
	Line    int     `json:"line"`
	Overall float64 `json:"overall"`
	Model   string  `json:"model,omitempty"`
}

// Failure is an answer the service could not grade.
type Failure struct {
	Line  int    `json:"line"`
	Error string `json:"error"`
}

// giveUpAfter failures without a single success ends a run: the grader is
// misconfigured, and grading the rest would only repeat the error.
const giveUpAfter = 10

// Run grades every item that the state file does not already hold, then
// reports on all of them. When ctx ends first, it returns ctx's error,
// and the results so far are in the state file for the next run.
func Run(ctx context.Context, ev Evaluator, items []Item, opts Options) (Report, error) {
	start := time.Now()
	if len(items) == 0 {
		return Report{}, errors.New("no answers to grade")
	}
	workers := opts.Concurrency
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	done := map[string]Result{}
	var state *stateFile
	if opts.StatePath != "" {
		var err error
		if done, err = loadState(opts.StatePath); err != nil {
			return Report{}, err
		}
		if state, err = openState(opts.StatePath); err != nil {
			return Report{}, err
		}
		defer state.Close()
	}
	var todo []Item
	queued := map[string]bool{}
	resumed := 0
	for _, it := range items {
		k := it.key(opts.Grader)
		switch {
		case done[k].Key != "":
			resumed++
		case !queued[k]: // a duplicate line is graded once
			queued[k] = true
			todo = append(todo, it)
		}
	}
	bar := newProgress(opts.Progress, len(todo), resumed)

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs := make(chan Item)
	type outcome struct {
		item Item
		res  Result
		err  error
	}
	outcomes := make(chan outcome)
	var wg sync.WaitGroup
	for range min(workers, max(1, len(todo))) {
		wg.Go(func() {
			for it := range jobs {
				e, err := ev.Evaluate(ctx, evaluation.Request{
					Answer:   it.Answer,
					Question: it.Question,
					Grader:   opts.Grader,
					Inline:   &evaluation.InlineRubric{Question: it.Question, ReferenceAnswer: it.ReferenceAnswer},
				})
				o := outcome{item: it, err: err}
				if err == nil {
					o.res = Result{Key: it.key(opts.Grader), Line: it.Line, Overall: e.Score.Overall, Model: e.Grader.Model}
				}
				outcomes <- o
			}
		})
	}
	go func() {
		defer close(jobs)
		for _, it := range todo {
			select {
			case jobs <- it:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(outcomes) }()

	var failures []Failure
	var writeErr error
	graded := 0
	for o := range outcomes {
		switch {
		case o.err != nil && ctx.Err() != nil:
			// Cut short by the end of the run, not a failure of the answer.
		case o.err != nil:
			failures = append(failures, Failure{Line: o.item.Line, Error: o.err.Error()})
			if len(failures) >= giveUpAfter && graded == 0 {
				cancel(fmt.Errorf("giving up after %d failures and no success; the first: line %d: %s",
					len(failures), failures[0].Line, failures[0].Error))
			}
		default:
			graded++
			done[o.res.Key] = o.res
			if state != nil && writeErr == nil {
				if writeErr = state.Append(o.res); writeErr != nil {
					cancel(writeErr)
				}
			}
		}
		bar.step(o.err == nil)
	}
	bar.finish()
	if err := context.Cause(ctx); err != nil {
		if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			return Report{}, err
		}
		if state == nil {
			return Report{}, fmt.Errorf("interrupted after grading %d of %d answers: %w", graded, len(todo), err)
		}
		return Report{}, fmt.Errorf("interrupted after grading %d of %d answers: %w; run again to resume from %s",
			graded, len(todo), err, opts.StatePath)
	}
	rep := buildReport(items, done, opts)
	rep.Resumed = resumed
	rep.State = opts.StatePath
	rep.Failed = len(failures)
	rep.Failures = failures[:min(len(failures), 10)]
	rep.Seconds = math.Round(time.Since(start).Seconds()*100) / 100
	return rep, nil
}

// stateFile appends results, one JSON line each, and is safe for one
// writer at a time (Run writes from one goroutine).
type stateFile struct {
	f *os.File
}

// openState opens the state file for appending, first ending a line that a
// crash may have left half-written.
func openState(name string) (*stateFile, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("state file: %w", err)
	}
	if fi, err := f.Stat(); err == nil && fi.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, fi.Size()-1); err == nil && last[0] != '\n' {
			if _, err := f.Write([]byte{'\n'}); err != nil {
				f.Close()
				return nil, fmt.Errorf("state file: %w", err)
			}
		}
	}
	return &stateFile{f: f}, nil
}

func (s *stateFile) Append(r Result) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if _, err := s.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	return nil
}

func (s *stateFile) Close() error { return s.f.Close() }

// loadState reads the results of earlier runs. A missing file is an empty
// state; lines that do not parse (a write cut short) are skipped.
func loadState(name string) (map[string]Result, error) {
	out := map[string]Result{}
	f, err := os.Open(name)
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state file: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		var r Result
		if json.Unmarshal(sc.Bytes(), &r) != nil || r.Key == "" {
			continue
		}
		out[r.Key] = r
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("state file %s: %w", name, err)
	}
	return out, nil
}
