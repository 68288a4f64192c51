package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const gradeTestQuestion = "What is rate limiting and how do you implement it?"

const gradeTestAnswer = "Rate limiting caps how many requests a client may send per time window, to protect the service from abuse. " +
	"I would use a token bucket per API key: it refills at a steady rate and allows short bursts. " +
	"The counters live in Redis so all replicas share them, and a client over the limit gets 429 Too Many Requests with a Retry-After header."

// runGrade runs `api grade args...` with stdin as the answer.
func runGrade(t *testing.T, vars map[string]string, stdin string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := runWith(context.Background(), append([]string{"grade"}, args...), env(vars), strings.NewReader(stdin), &out)
	return out.String(), err
}

type gradeJSON struct {
	ID     string
	Answer string
	Rubric struct {
		ID        string
		MatchedBy string `json:"matched_by"`
	}
	Score struct {
		Overall float64
		Band    string
	}
	Criteria []struct {
		Name     string
		Level    int
		Evidence []struct {
			Quote      string
			Start, End int
		}
	}
	FollowUps []struct{ Question string } `json:"follow_ups"`
}

func decodeGrade(t *testing.T, out string) gradeJSON {
	t.Helper()
	var e gradeJSON
	if err := json.Unmarshal([]byte(out), &e); err != nil {
		t.Fatalf("--json output is not the evaluation JSON: %v\n%s", err, out)
	}
	return e
}

func TestGradeInProcess(t *testing.T) {
	// The human-readable result, from stdin, the rubric found by question.
	out, err := runGrade(t, nil, gradeTestAnswer, "--question", gradeTestQuestion)
	if err != nil {
		t.Fatalf("grade: %v", err)
	}
	for _, want := range []string{"Rate limiting (api-rate-limiting v1)", "Score: ", "/100 (", "Criteria:", "/4  Purpose", "Follow-up questions:\n  1. ", "graded by heuristic"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	// --json with --rubric and --file.
	path := filepath.Join(t.TempDir(), "answer.txt")
	if err := os.WriteFile(path, []byte(gradeTestAnswer+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = runGrade(t, nil, "", "--rubric", "api-rate-limiting", "--file", path, "--json")
	if err != nil {
		t.Fatalf("grade --json: %v", err)
	}
	e := decodeGrade(t, out)
	if e.Rubric.ID != "api-rate-limiting" || e.Rubric.MatchedBy != "rubric_id" || e.Answer != gradeTestAnswer {
		t.Errorf("evaluation = %+v, want api-rate-limiting by rubric_id with the answer trimmed", e)
	}
	if len(e.Criteria) != 4 || len(e.FollowUps) == 0 || e.Score.Band == "" {
		t.Errorf("evaluation = %+v, want 4 criteria, a band and follow-ups", e)
	}
	for _, c := range e.Criteria {
		for _, ev := range c.Evidence {
			if got := string([]rune(e.Answer)[ev.Start:ev.End]); got != ev.Quote {
				t.Errorf("evidence %q at %d:%d reads %q", ev.Quote, ev.Start, ev.End, got)
			}
		}
	}

	// In process there is no key to give, even when the environment
	// requires one for the server.
	if _, err := runGrade(t, map[string]string{"ASSAY_REQUIRE_AUTH": "true"}, gradeTestAnswer, "--question", gradeTestQuestion); err != nil {
		t.Errorf("grade with ASSAY_REQUIRE_AUTH in process: %v", err)
	}
}

func TestGradeServer(t *testing.T) {
	base, _ := startServer(t, nil)
	out, err := runGrade(t, nil, gradeTestAnswer, "--server", base+"/", "--question", gradeTestQuestion)
	if err != nil {
		t.Fatalf("grade --server: %v", err)
	}
	if !strings.Contains(out, "Rate limiting (api-rate-limiting v1)") || !strings.Contains(out, "Follow-up questions:") {
		t.Errorf("output:\n%s", out)
	}
	// The evaluation was stored by that server.
	out, err = runGrade(t, nil, gradeTestAnswer, "--server", base, "--rubric", "api-rate-limiting", "--json")
	if err != nil {
		t.Fatalf("grade --server --json: %v", err)
	}
	e := decodeGrade(t, out)
	// Answer its first follow-up question.
	out, err = runGrade(t, nil, "I would keep the counters in Redis, updated atomically by a Lua script, and fall back to a local limiter when Redis is down.",
		"--server", base, "--follow-up", e.ID+":0")
	if err != nil {
		t.Fatalf("grade --follow-up: %v", err)
	}
	if !strings.Contains(out, "Follow-up: "+e.FollowUps[0].Question) {
		t.Errorf("follow-up output lacks the question:\n%s", out)
	}
	if _, err := runGrade(t, nil, "x", "--server", base, "--follow-up", e.ID); err == nil || !strings.Contains(err.Error(), "is not EVALUATION_ID:N") {
		t.Errorf("bad --follow-up: err = %v", err)
	}
	resp, err := http.Get(base + "/v1/evaluations/" + e.ID)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET the graded evaluation = %d, want 200", resp.StatusCode)
	}
}

func TestGradeServerKey(t *testing.T) {
	base, secret := startKeyedServer(t)
	_, err := runGrade(t, nil, gradeTestAnswer, "--server", base, "--question", gradeTestQuestion)
	if err == nil || !strings.Contains(err.Error(), "Unauthorized (401): send an API key as Authorization: Bearer KEY") {
		t.Errorf("without a key: err = %v, want the 401 problem's detail", err)
	}
	if _, err := runGrade(t, nil, gradeTestAnswer, "--server", base, "--key", secret, "--question", gradeTestQuestion); err != nil {
		t.Errorf("with --key: %v", err)
	}
	if _, err := runGrade(t, map[string]string{"ASSAY_API_KEY": secret}, gradeTestAnswer, "--server", base, "--question", gradeTestQuestion); err != nil {
		t.Errorf("with ASSAY_API_KEY: %v", err)
	}
	_, err = runGrade(t, nil, gradeTestAnswer, "--server", base, "--key", "assay_nosuchkey0_secret", "--question", gradeTestQuestion)
	if err == nil || !strings.Contains(err.Error(), "the API key is missing, malformed, unknown or revoked") {
		t.Errorf("with a wrong key: err = %v", err)
	}
}

func TestGradeErrors(t *testing.T) {
	base, _ := startServer(t, nil)
	for _, mode := range [][]string{nil, {"--server", base}} {
		name := "in-process"
		if mode != nil {
			name = "server"
		}
		t.Run(name, func(t *testing.T) {
			out, err := runGrade(t, nil, "  \n", append(mode, "--rubric", "api-rate-limiting")...)
			if err == nil {
				t.Fatalf("an empty answer was graded:\n%s", out)
			}
			if want := "A field is invalid (422): answer must not be empty\n  answer: must not be empty"; err.Error() != want {
				t.Errorf("err = %q, want %q", err, want)
			}
			if out != "" {
				t.Errorf("stdout = %q on error, want nothing", out)
			}
			_, err = runGrade(t, nil, gradeTestAnswer, append(mode, "--rubric", "no-such-rubric")...)
			if err == nil || !strings.Contains(err.Error(), `no rubric has the id "no-such-rubric"`) {
				t.Errorf("unknown rubric: err = %v", err)
			}
			_, err = runGrade(t, nil, "Bananas are yellow and grow in bunches on tall plants.", append(mode, "--question", "Which fruit do monkeys like?")...)
			if err == nil || !strings.Contains(err.Error(), "No matching rubric (422)") || !strings.Contains(err.Error(), "pick one with --rubric ID") {
				t.Errorf("no matching rubric: err = %v", err)
			}
		})
	}
	if _, err := runGrade(t, nil, "x", "--server", "localhost:8080"); err == nil || !strings.Contains(err.Error(), "is not an http:// or https:// URL") {
		t.Errorf("bad --server: err = %v", err)
	}
	if _, err := runGrade(t, nil, "x", "--file", filepath.Join(t.TempDir(), "missing.txt")); err == nil {
		t.Error("a missing --file was not an error")
	}
	if _, err := runGrade(t, nil, "x", "extra"); err == nil {
		t.Error("an extra argument was not an error")
	}
}

// TestGradeExitStatus checks the process: exit 0 and the result on stdout,
// or exit 1 and the problem's detail on stderr.
func TestGradeExitStatus(t *testing.T) {
	bin := binary(t)
	cmd := exec.Command(bin, "grade", "--question", gradeTestQuestion)
	cmd.Stdin = strings.NewReader(gradeTestAnswer)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("api grade: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "Score: ") || stderr.Len() != 0 {
		t.Errorf("stdout %q, stderr %q", stdout.String(), stderr.String())
	}

	cmd = exec.Command(bin, "grade", "--rubric", "api-rate-limiting")
	cmd.Stdin = strings.NewReader("")
	stdout.Reset()
	stderr.Reset()
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("empty answer: err = %v, want exit status 1", err)
	}
	if !strings.Contains(stderr.String(), "answer must not be empty") || stdout.Len() != 0 {
		t.Errorf("stdout %q, stderr %q; want the detail on stderr only", stdout.String(), stderr.String())
	}
}
