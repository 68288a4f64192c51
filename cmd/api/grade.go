package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/assay-dev/assay/internal/config"
	"github.com/assay-dev/assay/internal/evaluation"
)

const gradeUsage = `Usage: api grade [flags] < answer.txt

Grades one answer and prints the score, the band, each criterion's level and
the follow-up questions; with --json, the evaluation as the API returns it.
The answer comes from stdin, or from --file. The rubric is named by
--rubric ID, or found from --question (or, with neither, from the answer).
--follow-up ID:N answers follow-up question N (from 0) of evaluation ID
instead, graded against the criterion it probes (with --server: a process
of its own remembers no earlier evaluation).

With --server URL the answer goes to a running Assay, with the key of --key
or ASSAY_API_KEY. Without it, Assay runs in this process as api serve would,
with the in-memory store and the settings of the environment (an LLM grader
with ASSAY_LLM_MODEL, ...).

The exit status is 0 when the answer was graded; otherwise 1, with the
problem's detail on stderr.

Flags:
`

// gradeCmd runs `api grade`.
func gradeCmd(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout io.Writer) error {
	fs := commandFlags("grade", gradeUsage, stdout)
	file := fs.String("file", "", "read the answer from this file (- for stdin) instead of stdin")
	question := fs.String("question", "", "the question answered; finds the rubric unless --rubric names it")
	rubricID := fs.String("rubric", "", "grade against the rubric with this id")
	server := fs.String("server", "", "base URL of a running Assay, e.g. http://localhost:8080; empty grades in this process")
	key := fs.String("key", "", "API key for --server (default $ASSAY_API_KEY)")
	followUp := fs.String("follow-up", "", "answer follow-up N (from 0) of evaluation ID, as ID:N")
	grader := fs.String("grader", "", "grader to use: heuristic, or llm when the server has a model (default: the server's)")
	asJSON := fs.Bool("json", false, "print the evaluation as JSON")
	timeout := fs.Duration("timeout", 3*time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("grade: unexpected argument %q (the answer comes from stdin or --file)", fs.Arg(0))
	}
	answer, err := readAnswer(*file, stdin)
	if err != nil {
		return err
	}
	type followUpOf struct {
		EvaluationID string `json:"evaluation_id"`
		Index        int    `json:"index"`
	}
	var link *followUpOf
	if *followUp != "" {
		id, n, ok := strings.Cut(*followUp, ":")
		i, err := strconv.Atoi(n)
		if !ok || id == "" || err != nil || i < 0 {
			return fmt.Errorf("grade: --follow-up %q is not EVALUATION_ID:N", *followUp)
		}
		if *question != "" || *rubricID != "" {
			return errors.New("grade: --follow-up is graded against its own question; drop --question and --rubric")
		}
		link = &followUpOf{id, i}
	}
	body, err := json.Marshal(struct {
		Answer     string      `json:"answer"`
		Question   string      `json:"question,omitempty"`
		RubricID   string      `json:"rubric_id,omitempty"`
		Grader     string      `json:"grader,omitempty"`
		FollowUpOf *followUpOf `json:"follow_up_of,omitempty"`
	}{answer, strings.TrimSpace(*question), strings.TrimSpace(*rubricID), *grader, link})
	if err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	client, base := &http.Client{}, strings.TrimRight(*server, "/")
	token := *key
	if base == "" {
		a, err := inProcessApp(ctx, getenv)
		if err != nil {
			return err
		}
		defer a.close()
		client, base, token = &http.Client{Transport: handlerTransport{a.handler}}, "http://assay.in-process", ""
	} else {
		if u, err := url.Parse(base); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("grade: --server %q is not an http:// or https:// URL", *server)
		}
		if token == "" {
			token = getenv("ASSAY_API_KEY")
		}
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/evaluations", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("grade: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("grade: reading the response: %w", err)
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return problemError(resp, raw)
	}
	if *asJSON {
		var out bytes.Buffer
		if err := json.Indent(&out, raw, "", "  "); err != nil {
			return fmt.Errorf("grade: the server sent invalid JSON: %w", err)
		}
		out.WriteByte('\n')
		_, err := stdout.Write(out.Bytes())
		return err
	}
	var e evaluation.Evaluation
	if err := json.Unmarshal(raw, &e); err != nil {
		return fmt.Errorf("grade: the server sent an unexpected body: %w", err)
	}
	_, err = io.WriteString(stdout, formatEvaluation(e))
	return err
}

// readAnswer reads the answer from file, or from stdin; it refuses to wait
// for a terminal.
func readAnswer(file string, stdin io.Reader) (string, error) {
	if file != "" && file != "-" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("grade: %w", err)
		}
		return string(b), nil
	}
	if f, ok := stdin.(*os.File); ok && file == "" && isTerminal(f) {
		return "", errors.New("grade: give the answer on stdin (api grade < answer.txt) or with --file")
	}
	b, err := io.ReadAll(stdin)
	if err != nil {
		return "", fmt.Errorf("grade: reading stdin: %w", err)
	}
	return string(b), nil
}

// isTerminal reports whether f is a character device other than
// /dev/null: a person at a terminal, not a pipe or a file.
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	if err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(st, null)
}

// inProcessApp wires Assay as serve does, with the in-memory store and no
// API keys: nothing leaves the process but LLM calls, when configured.
func inProcessApp(ctx context.Context, getenv func(string) string) (*app, error) {
	cfg, err := config.Load(nil, getenv, io.Discard)
	if err != nil {
		return nil, err
	}
	cfg.DatabaseURL, cfg.RequireAuth = "", false
	return newApp(ctx, cfg, slog.New(slog.DiscardHandler))
}

// handlerTransport sends requests straight to a handler, in process.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// problemError turns an error response into an error that says what the
// problem's detail and field errors say.
func problemError(resp *http.Response, raw []byte) error {
	var p struct {
		Title  string `json:"title"`
		Status int    `json:"status"`
		Detail string `json:"detail"`
		Errors []struct {
			Pointer   string `json:"pointer"`
			Parameter string `json:"parameter"`
			Detail    string `json:"detail"`
		} `json:"errors"`
		Candidates []struct {
			ID         string  `json:"id"`
			Title      string  `json:"title"`
			Similarity float64 `json:"similarity"`
		} `json:"candidates"`
	}
	if err := json.Unmarshal(raw, &p); err != nil || p.Title == "" {
		return fmt.Errorf("grade: the server answered %s", resp.Status)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%d)", p.Title, resp.StatusCode)
	if p.Detail != "" {
		fmt.Fprintf(&b, ": %s", p.Detail)
	}
	for _, fe := range p.Errors {
		where := strings.TrimPrefix(fe.Pointer, "/")
		if where == "" {
			where = fe.Parameter
		}
		fmt.Fprintf(&b, "\n  %s: %s", where, fe.Detail)
	}
	if len(p.Candidates) > 0 {
		b.WriteString("\n  closest rubrics (pick one with --rubric ID):")
		for _, c := range p.Candidates {
			fmt.Fprintf(&b, "\n    %s  %s (similarity %.2f)", c.ID, c.Title, c.Similarity)
		}
	}
	return errors.New(b.String())
}

// formatEvaluation is the human-readable result of `api grade`.
func formatEvaluation(e evaluation.Evaluation) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s v%d)\n", e.Rubric.Title, e.Rubric.ID, e.Rubric.Version)
	if e.FollowUpOf != nil {
		fmt.Fprintf(&b, "Follow-up: %s\n", e.FollowUpOf.Question)
	}
	fmt.Fprintf(&b, "Score: %.1f/100 (%s)\n", e.Score.Overall, e.Score.Band)
	b.WriteString("\nCriteria:\n")
	for _, c := range e.Criteria {
		maxLevel := c.MaxLevel
		if maxLevel == 0 {
			maxLevel = 4
		}
		fmt.Fprintf(&b, "  %d/%d  %s\n", c.Level, maxLevel, c.Name)
		if c.Comment != "" {
			fmt.Fprintf(&b, "        %s\n", c.Comment)
		}
	}
	if len(e.MissingPoints) > 0 {
		b.WriteString("\nMissing points:\n")
		for _, p := range e.MissingPoints {
			fmt.Fprintf(&b, "  - %s\n", p)
		}
	}
	if len(e.Misconceptions) > 0 {
		b.WriteString("\nMisconceptions:\n")
		for _, m := range e.Misconceptions {
			fmt.Fprintf(&b, "  - %s\n", m.Claim)
		}
	}
	if e.Feedback != "" {
		fmt.Fprintf(&b, "\nFeedback: %s\n", e.Feedback)
	}
	if len(e.FollowUps) > 0 {
		b.WriteString("\nFollow-up questions:\n")
		for i, f := range e.FollowUps {
			fmt.Fprintf(&b, "  %d. %s\n", i+1, f.Question)
		}
	}
	if len(e.Flags) > 0 {
		fmt.Fprintf(&b, "\nFlags: %s\n", strings.Join(e.Flags, ", "))
	}
	fmt.Fprintf(&b, "\nEvaluation %s, graded by %s\n", e.ID, e.Grader.Kind)
	return b.String()
}
