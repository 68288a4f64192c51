package openaitest

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"
)

func client(s *Server) *openai.Client {
	cfg := openai.DefaultConfig("k")
	cfg.BaseURL = s.URL
	return openai.NewClientWithConfig(cfg)
}

func TestScriptAndRecord(t *testing.T) {
	s := New(t)
	s.Enqueue(
		Reply(Completion{Content: `{"a":1}`, PromptTokens: 7, CompletionTokens: 3}),
		Error(http.StatusBadRequest, "bad", "invalid_request_error", "x"),
		RateLimited(250*time.Millisecond),
		Refusal("no"),
		Truncated("{"),
	)
	c := client(s)
	ctx := context.Background()
	seed := 3
	req := openai.ChatCompletionRequest{Model: "m1", Seed: &seed, Temperature: 0.5,
		Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "hi"}}}

	resp, err := c.CreateChatCompletion(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Model != "m1" || resp.Choices[0].Message.Content != `{"a":1}` || resp.Usage.PromptTokens != 7 || resp.Usage.TotalTokens != 10 {
		t.Errorf("reply = %+v", resp)
	}
	_, err = c.CreateChatCompletion(ctx, req)
	var ae *openai.APIError
	if !errors.As(err, &ae) || ae.HTTPStatusCode != 400 || ae.Message != "bad" || ae.Code != "x" {
		t.Errorf("error reply = %v", err)
	}
	_, err = c.CreateChatCompletion(ctx, req)
	if !errors.As(err, &ae) || ae.HTTPStatusCode != 429 {
		t.Errorf("429 reply = %v", err)
	}
	resp, _ = c.CreateChatCompletion(ctx, req)
	if resp.Choices[0].Message.Refusal != "no" {
		t.Errorf("refusal = %+v", resp.Choices[0].Message)
	}
	resp, _ = c.CreateChatCompletion(ctx, req)
	if resp.Choices[0].FinishReason != openai.FinishReasonLength {
		t.Errorf("finish = %q", resp.Choices[0].FinishReason)
	}
	if s.Pending() != 0 {
		t.Errorf("%d replies unplayed", s.Pending())
	}
	reqs := s.ChatRequests()
	if len(reqs) != 5 {
		t.Fatalf("%d requests recorded", len(reqs))
	}
	got := reqs[0].Chat()
	if got.Model != "m1" || *got.Seed != 3 || *got.Temperature != 0.5 || got.Messages[0].Content != "hi" {
		t.Errorf("recorded %+v", got)
	}
	if reqs[0].Header.Get("Authorization") != "Bearer k" {
		t.Errorf("Authorization = %q", reqs[0].Header.Get("Authorization"))
	}
}

func TestDelayedRespectsCancel(t *testing.T) {
	s := New(t)
	s.Enqueue(Chat("late").Delayed(5 * time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := client(s).CreateChatCompletion(ctx, openai.ChatCompletionRequest{Model: "m",
		Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "hi"}}})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Errorf("err %v after %v", err, time.Since(start))
	}
}

func TestEmbeddingsAndModels(t *testing.T) {
	s := New(t)
	c := client(s)
	resp, err := c.CreateEmbeddings(context.Background(), openai.EmbeddingRequestStrings{
		Input: []string{"a b", "c"}, Model: "e", Dimensions: 8})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Data) != 2 || len(resp.Data[0].Embedding) != 8 || resp.Data[1].Index != 1 {
		t.Errorf("embeddings = %+v", resp.Data)
	}
	models, err := c.ListModels(context.Background())
	if err != nil || len(models.Models) == 0 {
		t.Errorf("models = %+v, %v", models, err)
	}
}
