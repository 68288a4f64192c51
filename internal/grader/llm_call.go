package grader

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

	openai "github.com/sashabaranov/go-openai"

	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/fault"
)

// sampleResult is one grading of a self-consistent set, or its error.
type sampleResult struct {
	g     evaluation.Grading
	usage evaluation.Usage
	model string
	err   error
}

// sample runs one grading: a completion, its validation, and at most one
// repair call when the reply is unusable.
func (l *LLM) sample(ctx context.Context, p *prompt, i int, temp *float32) (res sampleResult) {
	req := l.request(p, i, temp)
	content, err := l.completeContent(ctx, req, &res)
	if err != nil {
		res.err = err
		return res
	}
	g, problems := l.check(p, content)
	if len(problems) == 0 {
		res.g = g
		return res
	}
	l.log.Warn("llm grader: invalid reply, asking for a repair", "problems", strings.Join(problems, "; "), "sample", i)
	req.Messages = p.repairMessages(content, problems)
	content, err = l.completeContent(ctx, req, &res)
	if err != nil {
		res.err = err
		return res
	}
	g, problems = l.check(p, content)
	if len(problems) > 0 {
		var shown []string
		for i, pr := range problems {
			if i == 3 {
				shown = append(shown, fmt.Sprintf("and %d more", len(problems)-3))
				break
			}
			if r := []rune(pr); len(r) > 160 {
				pr = string(r[:160]) + "…"
			}
			shown = append(shown, pr)
		}
		res.err = fault.Wrap(errors.New(strings.Join(problems, "; ")), fault.Upstream,
			"the grader returned invalid output twice: "+strings.Join(shown, "; "))
		return res
	}
	res.g = g
	return res
}

func (l *LLM) check(p *prompt, content string) (evaluation.Grading, []string) {
	out, err := parseOutput(content, p.format)
	if err != nil {
		return evaluation.Grading{}, []string{err.Error()}
	}
	return validate(p.rubric, p.text(), out)
}

// request builds the chat completion request of sample i.
func (l *LLM) request(p *prompt, i int, temp *float32) openai.ChatCompletionRequest {
	req := openai.ChatCompletionRequest{
		Model:               l.cfg.Model,
		Messages:            p.messages(),
		MaxCompletionTokens: l.cfg.MaxTokens,
	}
	if temp != nil {
		req.Temperature = *temp
		if req.Temperature == 0 {
			// go-openai omits a zero temperature (and the API default is
			// 1); the smallest float32 is sent instead and means greedy
			// decoding (sashabaranov/go-openai#9).
			req.Temperature = math.SmallestNonzeroFloat32
		}
	}
	if l.cfg.Seed != nil {
		s := *l.cfg.Seed + i
		req.Seed = &s
	}
	switch p.format {
	case FormatJSONSchema:
		req.ResponseFormat = &openai.ChatCompletionResponseFormat{
			Type: openai.ChatCompletionResponseFormatTypeJSONSchema,
			JSONSchema: &openai.ChatCompletionResponseFormatJSONSchema{
				Name: SchemaName, Schema: p.schema, Strict: true,
			},
		}
	case FormatJSONObject:
		req.ResponseFormat = &openai.ChatCompletionResponseFormat{Type: openai.ChatCompletionResponseFormatTypeJSONObject}
	}
	return req
}

// completeContent calls the model and returns the reply's text, adding the
// usage to res. A cut-off reply and a refusal are errors, not parsed.
func (l *LLM) completeContent(ctx context.Context, req openai.ChatCompletionRequest, res *sampleResult) (string, error) {
	resp, err := l.complete(ctx, req)
	if err != nil {
		return "", err
	}
	res.usage.Prompt += resp.Usage.PromptTokens
	res.usage.Completion += resp.Usage.CompletionTokens
	if res.model == "" {
		res.model = resp.Model
	}
	if len(resp.Choices) == 0 {
		return "", fault.New(fault.Upstream, "the grader returned no choices")
	}
	ch := resp.Choices[0]
	switch {
	case ch.Message.Refusal != "":
		return "", fault.Wrap(errors.New(ch.Message.Refusal), fault.Upstream, "the grading model refused to grade this answer")
	case ch.FinishReason == openai.FinishReasonContentFilter:
		return "", fault.Wrap(errors.New("finish_reason content_filter"), fault.Upstream,
			"the grading model's content filter stopped the grading")
	case ch.FinishReason == openai.FinishReasonLength:
		return "", fault.Wrap(fmt.Errorf("finish_reason length after %d completion tokens", resp.Usage.CompletionTokens),
			fault.Upstream, "the grader's reply was cut off at its token limit")
	}
	return ch.Message.Content, nil
}
