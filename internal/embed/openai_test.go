package embed

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	openai "github.com/sashabaranov/go-openai"

	"github.com/assay-dev/assay/internal/fault"
	"github.com/assay-dev/assay/internal/openaitest"
)

func newOpenAI(srv *openaitest.Server) *OpenAI {
	cfg := openai.DefaultConfig("test-key")
	cfg.BaseURL = srv.URL
	return NewOpenAI(openai.NewClientWithConfig(cfg), "text-embedding-3-small")
}

func TestOpenAIEmbedBatches(t *testing.T) {
	srv := openaitest.New(t)
	e := newOpenAI(srv)
	e.BatchSize = 2
	if got, want := e.Model(), "openai:text-embedding-3-small"; got != want {
		t.Errorf("Model() = %q, want %q", got, want)
	}
	texts := []string{"token bucket", "sliding window", "", "fixed window counter", "redis lua"}
	vecs, err := e.Embed(context.Background(), texts)
	if err != nil {
		t.Fatalf("Embed: %v", err)
	}
	if len(vecs) != len(texts) {
		t.Fatalf("%d vectors for %d texts", len(vecs), len(texts))
	}
	for i, txt := range texts {
		want := openaitest.Vector(txt, srv.EmbeddingDims)
		if txt == "" {
			want = openaitest.Vector(" ", srv.EmbeddingDims)
		}
		if !slices.Equal(vecs[i], want) {
			t.Errorf("vector %d (%q) out of order or wrong", i, txt)
		}
	}
	reqs := srv.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3 batches of at most 2", len(reqs))
	}
	for _, r := range reqs {
		if r.Path != openaitest.EmbeddingsPath || r.Body["model"] != "text-embedding-3-small" {
			t.Errorf("request %s %v", r.Path, r.Body)
		}
		if in, _ := r.Body["input"].([]any); len(in) > 2 || len(in) == 0 {
			t.Errorf("batch of %d inputs", len(in))
		}
	}
	if vecs, err := e.Embed(context.Background(), nil); err != nil || len(vecs) != 0 {
		t.Errorf("Embed(nil) = %v, %v; want no vectors and no call", vecs, err)
	}
}

func TestOpenAIEmbedErrors(t *testing.T) {
	tests := []struct {
		name string
		resp openaitest.Response
		kind fault.Kind
	}{
		{"rate limited", openaitest.RateLimited(0), fault.Unavailable},
		{"overloaded", openaitest.Error(503, "overloaded", "server_error", ""), fault.Unavailable},
		{"server error", openaitest.ServerError(), fault.Upstream},
		{"bad key", openaitest.Error(401, "Incorrect API key provided: sk-123", "invalid_request_error", "invalid_api_key"), fault.Upstream},
		{"unreadable", openaitest.Raw(200, "not json"), fault.Upstream},
		{"too few vectors", openaitest.Raw(200, `{"object":"list","data":[],"model":"m"}`), fault.Upstream},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := openaitest.New(t)
			srv.EnqueueFor(openaitest.EmbeddingsPath, tt.resp)
			_, err := newOpenAI(srv).Embed(context.Background(), []string{"a"})
			fe, ok := fault.As(err)
			if !ok || fe.Kind != tt.kind {
				t.Fatalf("err = %v, want kind %v", err, tt.kind)
			}
			if strings.Contains(fe.Message, "sk-123") || strings.Contains(fe.Message, "overloaded") {
				t.Errorf("message %q leaks the provider's error", fe.Message)
			}
		})
	}
	t.Run("cancelled", func(t *testing.T) {
		srv := openaitest.New(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := newOpenAI(srv).Embed(ctx, []string{"a"})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	})
}
