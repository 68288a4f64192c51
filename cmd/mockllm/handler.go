package main

import (
	"bytes"
	"encoding/json"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

type handler struct {
	o       options
	mu      sync.Mutex
	rng     *rand.Rand
	rubrics *rubricCache
}

func newHandler(o options) http.Handler {
	h := &handler{o: o, rng: rand.New(rand.NewPCG(o.seed, 0x6d6f636b)), rubrics: newRubricCache()}
	mux := http.NewServeMux()
	mux.Handle("POST /v1/chat/completions", h.faulty(http.HandlerFunc(h.chat)))
	mux.Handle("POST /v1/embeddings", h.faulty(http.HandlerFunc(h.embeddings)))
	mux.HandleFunc("GET /v1/models", h.models)
	return mux
}

// faulty adds the latency and the failures.
func (h *handler) faulty(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.o.latency > 0 {
			t := time.NewTimer(h.o.latency)
			select {
			case <-r.Context().Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		h.mu.Lock()
		fail, limited := h.rng.Float64() < h.o.errorRate, h.rng.IntN(5) == 0
		h.mu.Unlock()
		switch {
		case fail && limited:
			w.Header().Set("Retry-After", "1")
			apiError(w, http.StatusTooManyRequests, "Rate limit reached (mockllm)", "requests", "rate_limit_exceeded")
		case fail:
			apiError(w, http.StatusInternalServerError, "The server had an error while processing your request (mockllm).", "server_error", "")
		default:
			next.ServeHTTP(w, r)
		}
	})
}

func apiError(w http.ResponseWriter, status int, message, typ, code string) {
	var c any
	if code != "" {
		c = code
	}
	writeJSON(w, status, map[string]any{"error": map[string]any{"message": message, "type": typ, "param": nil, "code": c}})
}

// writeJSON encodes v into a pooled buffer first, so that the reply goes
// out in one write with a Content-Length rather than chunked.
func writeJSON(w http.ResponseWriter, status int, v any) {
	buf := jsonBufs.Get().(*bytes.Buffer)
	defer putBuf(buf)
	buf.Reset()
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// jsonBufs holds the buffers of request and reply bodies, bufPool smaller
// scratch slices: a completion then allocates little beyond its strings.
var (
	jsonBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}
	bufPool  = sync.Pool{New: func() any { return new([]byte) }}
)

// maxPooled is the largest buffer kept for reuse; a larger one (a long
// embeddings reply, a large request) would stay alive in the pool.
const maxPooled = 1 << 20

func putBuf(b *bytes.Buffer) {
	if b.Cap() <= maxPooled {
		jsonBufs.Put(b)
	}
}

func putBytes(b *[]byte) {
	if cap(*b) <= maxPooled {
		bufPool.Put(b)
	}
}

func (h *handler) chat(w http.ResponseWriter, r *http.Request) {
	var req chatRequest
	if err := decodeChat(w, r, &req); err != nil {
		apiError(w, http.StatusBadRequest, "invalid JSON body: "+err.Error(), "invalid_request_error", "")
		return
	}
	if len(req.Messages) == 0 {
		apiError(w, http.StatusBadRequest, "messages must not be empty", "invalid_request_error", "")
		return
	}
	var system, user string
	promptChars := 0
	for _, m := range req.Messages {
		promptChars += len(m.Content)
		switch {
		case m.Role == "system" && system == "":
			system = m.Content
		case m.Role == "user" && user == "":
			user = m.Content
		}
	}
	var schema json.RawMessage
	format := "text"
	if rf := req.ResponseFormat; rf != nil {
		format = rf.Type
		if rf.JSONSchema != nil {
			schema = rf.JSONSchema.Schema
		}
	}
	content, err := json.Marshal(grade(h.rubrics.get(system, schema), extractAnswer(user)))
	if err != nil {
		apiError(w, http.StatusInternalServerError, err.Error(), "server_error", "")
		return
	}
	text := string(content)
	if format != "json_schema" && format != "json_object" {
		text = "```json\n" + text + "\n```"
	}
	model := req.Model
	if model == "" {
		model = "mockllm"
	}
	pt, ct := promptChars/4+3*len(req.Messages)+3, len(text)/4+1
	writeJSON(w, http.StatusOK, chatResponse{
		Choices: []chatChoice{{FinishReason: "stop", Message: chatMessage{Content: text, Role: "assistant"}}},
		Created: time.Now().Unix(), ID: "chatcmpl-mock", Model: model, Object: "chat.completion",
		Usage: chatUsage{CompletionTokens: ct, PromptTokens: pt, TotalTokens: pt + ct},
	})
}

// chatResponse is a chat completion. Structs encode faster than the maps
// they replace; their fields are in the maps' (sorted) key order, so the
// bytes are the same.
type chatResponse struct {
	Choices []chatChoice `json:"choices"`
	Created int64        `json:"created"`
	ID      string       `json:"id"`
	Model   string       `json:"model"`
	Object  string       `json:"object"`
	Usage   chatUsage    `json:"usage"`
}

type chatChoice struct {
	FinishReason string      `json:"finish_reason"`
	Index        int         `json:"index"`
	Message      chatMessage `json:"message"`
}

type chatMessage struct {
	Content string `json:"content"`
	Role    string `json:"role"`
}

type chatUsage struct {
	CompletionTokens int `json:"completion_tokens"`
	PromptTokens     int `json:"prompt_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

func (h *handler) embeddings(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Input      any    `json:"input"`
		Model      string `json:"model"`
		Dimensions int    `json:"dimensions"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<20)).Decode(&req); err != nil {
		apiError(w, http.StatusBadRequest, "invalid JSON body", "invalid_request_error", "")
		return
	}
	var texts []string
	switch v := req.Input.(type) {
	case string:
		texts = []string{v}
	case []any:
		for _, x := range v {
			s, ok := x.(string)
			if !ok {
				apiError(w, http.StatusBadRequest, "input must be a string or an array of strings", "invalid_request_error", "")
				return
			}
			texts = append(texts, s)
		}
	default:
		apiError(w, http.StatusBadRequest, "input must be a string or an array of strings", "invalid_request_error", "")
		return
	}
	dims := h.o.dims
	if req.Dimensions > 0 {
		dims = req.Dimensions
	}
	data := make([]any, len(texts))
	tokens := 0
	for i, t := range texts {
		data[i] = map[string]any{"object": "embedding", "index": i, "embedding": vector(t, dims)}
		tokens += len(strings.Fields(t)) + 1
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data, "model": req.Model,
		"usage": map[string]any{"prompt_tokens": tokens, "total_tokens": tokens}})
}

func (h *handler) models(w http.ResponseWriter, _ *http.Request) {
	var data []any
	for _, id := range []string{"mock-grader", "mock-embedding"} {
		data = append(data, map[string]any{"id": id, "object": "model", "created": 1700000000, "owned_by": "mockllm"})
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
}

// vector hashes lower-cased words and their character trigrams into dims
// signed buckets and normalises: texts sharing words are similar.
func vector(text string, dims int) []float32 {
	v := make([]float64, dims)
	add := func(f string, w float64) {
		h := fnv.New64a()
		h.Write([]byte(f))
		x := h.Sum64()
		if x>>63 == 1 {
			w = -w
		}
		v[x%uint64(dims)] += w
	}
	for _, word := range words(text) {
		add("w:"+word, 1)
		p := "^" + word + "$"
		for i := 0; i+3 <= len(p); i++ {
			add("c:"+p[i:i+3], 0.3)
		}
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
