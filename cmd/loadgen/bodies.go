package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

type answer struct {
	rubric, question, text string
}

// bodies makes the request bodies. They are the bytes json.Marshal gave
// for maps of the same fields, but assembled from pieces encoded once,
// because marshalling a map (with the 5 KB system prompt, for the mock)
// on every request was a good part of loadgen's CPU.
type bodies struct {
	o       options
	answers []answer
	system  string   // -target mock: the rendered system prompt
	fixed   [][]byte // scenario cache: the primed bodies
	run     string   // distinguishes this run's answers from earlier runs'

	url       string   // where the requests go
	texts     []string // answers[i].text, JSON-escaped, without the quotes
	questions []string // answers[i].question as a JSON string
	prefix    []byte   // -target mock: the body up to the user message
}

func newBodies(o options) (*bodies, error) {
	b := &bodies{o: o, run: fmt.Sprintf("%x", time.Now().UnixNano()&0xffffffffff)}
	switch o.target {
	case "mock-models":
		b.url = o.url + "/models"
		return b, nil
	case "mock":
		b.url = o.url + "/chat/completions"
	default:
		b.url = o.url + "/v1/evaluations"
	}
	questions, err := loadQuestions(o.rubricsDir)
	if err != nil {
		return nil, err
	}
	if b.answers, err = loadAnswers(o.answersDir, questions); err != nil {
		return nil, err
	}
	for _, a := range b.answers {
		t := jsonString(a.text)
		b.texts = append(b.texts, t[1:len(t)-1])
		b.questions = append(b.questions, jsonString(a.question))
	}
	if o.target == "mock" {
		raw, err := os.ReadFile(o.promptFile)
		if err != nil {
			return nil, err
		}
		sys, _, ok := strings.Cut(strings.TrimPrefix(string(raw), "=== system ===\n"), "\n=== user ===\n")
		if !ok {
			return nil, fmt.Errorf("%s: want '=== system ===' and '=== user ===' sections", o.promptFile)
		}
		b.system = sys
		b.prefix = fmt.Appendf(nil, `{"max_completion_tokens":2000,"messages":[{"content":%s,"role":"system"},{"content":"`, jsonString(sys))
	}
	if o.target == "assay" && o.scenario == "cache" {
		for i := range min(o.cacheSet, 3*len(b.answers)) {
			b.fixed = append(b.fixed, b.assayBody(int64(-1-i)))
		}
	}
	return b, nil
}

// jsonString is s as json.Marshal writes it. Escaping works character by
// character, so escaped pieces put together are the escaped whole.
func jsonString(s string) string {
	out, _ := json.Marshal(s)
	return string(out)
}

// index is the answer that request n sends: the three variants of each
// answer (strong, partial, wrong) are cycled through.
func (b *bodies) index(n int64) int {
	return int(uint64(n) % uint64(len(b.answers)))
}

// appendText appends answer i's text, escaped, made distinct from every
// other request of this and earlier runs by a closing reference line
// ("\n\nReference RUN-N.").
func (b *bodies) appendText(out []byte, i int, n int64) []byte {
	out = append(out, b.texts[i]...)
	out = append(out, `\n\nReference `...)
	out = append(out, b.run...)
	out = append(out, '-')
	out = strconv.AppendInt(out, n, 10)
	return append(out, '.')
}

// assayBody is {"answer":…,"grader":"heuristic","question":…}, the grader
// only in the heuristic scenario.
func (b *bodies) assayBody(n int64) []byte {
	i := b.index(n)
	out := make([]byte, 0, len(b.texts[i])+len(b.questions[i])+len(b.run)+80)
	out = append(out, `{"answer":"`...)
	out = b.appendText(out, i, n)
	out = append(out, '"')
	if b.o.scenario == "heuristic" {
		out = append(out, `,"grader":"heuristic"`...)
	}
	out = append(out, `,"question":`...)
	out = append(out, b.questions[i]...)
	return append(out, '}')
}

// mockBody is the chat completion the LLM grader would send: the system
// prompt and the answer between tags named after n, as json.Marshal
// escapes them (< and > as \u003c and \u003e).
func (b *bodies) mockBody(n int64) []byte {
	i := b.index(n)
	var tag [len("answer_") + 8]byte
	copy(tag[:], "answer_")
	x := uint32(n)
	for j := len(tag) - 1; j >= len("answer_"); j-- {
		tag[j] = "0123456789abcdef"[x&15]
		x >>= 4
	}
	out := make([]byte, 0, len(b.prefix)+len(b.texts[i])+len(b.run)+200)
	out = append(out, b.prefix...)
	out = append(out, `\u003c`...)
	out = append(out, tag[:]...)
	out = append(out, `\u003e\n`...)
	out = b.appendText(out, i, n)
	out = append(out, `\n\u003c/`...)
	out = append(out, tag[:]...)
	out = append(out, `\u003e\n","role":"user"}],"model":"mock-grader","response_format":{"type":"json_object"}}`...)
	return out
}

func (b *bodies) request(n int64) (method, url string, body []byte) {
	switch {
	case b.o.target == "mock-models":
		return http.MethodGet, b.url, nil
	case b.o.target == "mock":
		return http.MethodPost, b.url, b.mockBody(n)
	case b.fixed != nil:
		return http.MethodPost, b.url, b.fixed[int(uint64(n)%uint64(len(b.fixed)))]
	}
	return http.MethodPost, b.url, b.assayBody(n)
}

// prime grades the cache scenario's answers once, so that the measured
// requests are all cache hits.
func prime(ctx context.Context, client *http.Client, o options, b *bodies) error {
	for i, body := range b.fixed {
		status, data, err := post(ctx, client, o, body)
		if err != nil {
			return err
		}
		if status != http.StatusCreated {
			return fmt.Errorf("priming the cache: request %d: status %d: %.300s", i, status, data)
		}
	}
	return nil
}

// post sends one priming request, with the -timeout that do gives every
// request through its context (the client has none).
func post(ctx context.Context, client *http.Client, o options, body []byte) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.url+"/v1/evaluations", bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("priming the cache: %w", err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, data, nil
}

func loadQuestions(dir string) (map[string]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no rubric files in %s", dir)
	}
	out := map[string]string{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var r struct {
			ID       string `yaml:"id"`
			Question string `yaml:"question"`
		}
		if err := yaml.Unmarshal(raw, &r); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		out[r.ID] = r.Question
	}
	return out, nil
}

func loadAnswers(dir string, questions map[string]string) ([]answer, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no answer files in %s", dir)
	}
	var out []answer
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var a struct {
			Rubric  string `yaml:"rubric"`
			Strong  string `yaml:"strong"`
			Partial string `yaml:"partial"`
			Wrong   string `yaml:"wrong"`
		}
		if err := yaml.Unmarshal(raw, &a); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		q := questions[a.Rubric]
		for _, t := range []string{a.Strong, a.Partial, a.Wrong} {
			if t = strings.TrimSpace(t); t != "" {
				out = append(out, answer{rubric: a.Rubric, question: q, text: t})
			}
		}
	}
	return out, nil
}
