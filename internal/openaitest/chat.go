package openaitest

import (
	"encoding/json"
	"hash/fnv"
	"math"
	"strings"
)

// Completion describes a chat completion reply.
type Completion struct {
	Content string
	// FinishReason defaults to "stop".
	FinishReason string
	Refusal      string
	// Model defaults to the model of the request.
	Model string
	// Usage; zero values default to 100 prompt and 50 completion tokens.
	PromptTokens, CompletionTokens int
}

// Default usage of a reply.
const (
	DefaultPromptTokens     = 100
	DefaultCompletionTokens = 50
)

// Reply is a 200 chat completion.
func Reply(c Completion) Response { return Response{Status: 200, chat: &c} }

// Chat is a 200 chat completion with content and finish_reason "stop".
func Chat(content string) Response { return Reply(Completion{Content: content}) }

// Truncated is a reply cut off at the token limit (finish_reason "length").
func Truncated(content string) Response {
	return Reply(Completion{Content: content, FinishReason: "length"})
}

// Refusal is a reply whose message refuses (message.refusal set).
func Refusal(message string) Response { return Reply(Completion{Refusal: message}) }

// ContentFiltered is a reply stopped by the content filter.
func ContentFiltered() Response { return Reply(Completion{FinishReason: "content_filter"}) }

func (c *Completion) body(req Request) []byte {
	model := c.Model
	if model == "" {
		model, _ = req.Body["model"].(string)
	}
	finish := c.FinishReason
	if finish == "" {
		finish = "stop"
	}
	pt, ct := c.PromptTokens, c.CompletionTokens
	if pt == 0 {
		pt = DefaultPromptTokens
	}
	if ct == 0 {
		ct = DefaultCompletionTokens
	}
	msg := map[string]any{"role": "assistant", "content": c.Content}
	if c.Refusal != "" {
		msg["content"] = nil
		msg["refusal"] = c.Refusal
	}
	b, _ := json.Marshal(map[string]any{
		"id": "chatcmpl-test", "object": "chat.completion", "created": 1700000000, "model": model,
		"choices": []any{map[string]any{"index": 0, "message": msg, "finish_reason": finish}},
		"usage":   map[string]any{"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct},
	})
	return b
}

// Message is one message of a chat request.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// ChatRequest is a chat completion request as sent. Pointers tell absent
// fields from zero ones.
type ChatRequest struct {
	Model               string    `json:"model"`
	Messages            []Message `json:"messages"`
	Temperature         *float64  `json:"temperature"`
	Seed                *int      `json:"seed"`
	N                   int       `json:"n"`
	MaxTokens           int       `json:"max_tokens"`
	MaxCompletionTokens int       `json:"max_completion_tokens"`
	ResponseFormat      *struct {
		Type       string `json:"type"`
		JSONSchema *struct {
			Name   string          `json:"name"`
			Strict bool            `json:"strict"`
			Schema json.RawMessage `json:"schema"`
		} `json:"json_schema"`
	} `json:"response_format"`
}

// Chat decodes the request as a chat completion request.
func (r Request) Chat() ChatRequest {
	var c ChatRequest
	_ = json.Unmarshal(r.Raw, &c)
	return c
}

// embeddings answers with Vector of each input.
func embeddings(req Request, dims int) Response {
	var in struct {
		Input      any    `json:"input"`
		Model      string `json:"model"`
		Dimensions int    `json:"dimensions"`
	}
	if err := json.Unmarshal(req.Raw, &in); err != nil {
		return Error(400, "invalid JSON body", "invalid_request_error", "")
	}
	if in.Dimensions > 0 {
		dims = in.Dimensions
	}
	var texts []string
	switch v := in.Input.(type) {
	case string:
		texts = []string{v}
	case []any:
		for _, x := range v {
			s, ok := x.(string)
			if !ok {
				return Error(400, "input must be a string or an array of strings", "invalid_request_error", "")
			}
			texts = append(texts, s)
		}
	default:
		return Error(400, "input must be a string or an array of strings", "invalid_request_error", "")
	}
	data := make([]any, len(texts))
	tokens := 0
	for i, t := range texts {
		data[i] = map[string]any{"object": "embedding", "index": i, "embedding": Vector(t, dims)}
		tokens += len(strings.Fields(t))
	}
	b, _ := json.Marshal(map[string]any{"object": "list", "data": data, "model": in.Model,
		"usage": map[string]any{"prompt_tokens": tokens, "total_tokens": tokens}})
	return Response{Status: 200, Body: b}
}

// Vector is the deterministic embedding the server returns for text: its
// lower-cased words hashed into dims signed buckets, L2-normalised (the
// first unit vector for text without words).
func Vector(text string, dims int) []float32 {
	v := make([]float64, dims)
	for _, w := range strings.Fields(strings.ToLower(text)) {
		h := fnv.New64a()
		h.Write([]byte(w))
		x := h.Sum64()
		s := 1.0
		if x>>63 == 1 {
			s = -1
		}
		v[x%uint64(dims)] += s
	}
	var norm float64
	for _, x := range v {
		norm += x * x
	}
	out := make([]float32, dims)
	if norm == 0 {
		out[0] = 1
		return out
	}
	norm = math.Sqrt(norm)
	for i, x := range v {
		out[i] = float32(x / norm)
	}
	return out
}

func models() Response {
	b, _ := json.Marshal(map[string]any{"object": "list", "data": []any{
		map[string]any{"id": "gpt-4o-mini", "object": "model", "created": 1700000000, "owned_by": "openaitest"},
		map[string]any{"id": "text-embedding-3-small", "object": "model", "created": 1700000000, "owned_by": "openaitest"},
	}})
	return Response{Status: 200, Body: b}
}
