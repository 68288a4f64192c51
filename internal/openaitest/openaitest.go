// Package openaitest is a fake OpenAI-compatible API for tests: a script of
// responses per endpoint, played in order, and a record of every request
// so a test can assert exactly what a client sent.
//
//	srv := openaitest.New(t)
//	srv.Enqueue(openaitest.RateLimited(10*time.Millisecond), openaitest.Chat(`{"ok":true}`))
//	client := openai.NewClientWithConfig(cfg(srv.URL))
//	...
//	req := srv.ChatRequests()[1].Chat()
package openaitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// Paths of the endpoints, below the base URL's /v1.
const (
	ChatPath       = "/v1/chat/completions"
	EmbeddingsPath = "/v1/embeddings"
	ModelsPath     = "/v1/models"
)

// Server is a running fake API. It is closed when the test ends.
type Server struct {
	// URL is the base URL to configure a client with, including /v1.
	URL string
	// EmbeddingDims is the length of the vectors /v1/embeddings makes when
	// no response is scripted; a request's "dimensions" overrides it.
	EmbeddingDims int

	t        testing.TB
	srv      *httptest.Server
	mu       sync.Mutex
	queues   map[string][]Response
	requests []Request
}

// Response is one scripted reply.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
	// Delay holds the reply back; a client that gives up first gets none.
	Delay time.Duration
	// chat, when set, builds the body at reply time (to echo the model).
	chat *Completion
}

// Delayed returns r held back by d: a slow reply.
func (r Response) Delayed(d time.Duration) Response {
	r.Delay = d
	return r
}

// Request is one request the server received.
type Request struct {
	Method string
	Path   string
	Header http.Header
	// Raw is the body as sent and Body the same decoded (nil if not JSON).
	Raw  []byte
	Body map[string]any
	// At is when the request arrived.
	At time.Time
}

// New starts a server that fails t if it receives a request it has no
// scripted response for (embeddings and models need none).
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, queues: map[string][]Response{}, EmbeddingDims: 16}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL + "/v1"
	t.Cleanup(s.srv.Close)
	return s
}

// Enqueue scripts the next replies of /v1/chat/completions.
func (s *Server) Enqueue(rs ...Response) { s.EnqueueFor(ChatPath, rs...) }

// EnqueueFor scripts the next replies of another path, such as
// EmbeddingsPath.
func (s *Server) EnqueueFor(path string, rs ...Response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queues[path] = append(s.queues[path], rs...)
}

// Pending returns how many scripted chat replies are still unplayed.
func (s *Server) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queues[ChatPath])
}

// Requests returns every request received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// ChatRequests returns the requests to /v1/chat/completions.
func (s *Server) ChatRequests() []Request {
	var out []Request
	for _, r := range s.Requests() {
		if r.Path == ChatPath {
			out = append(out, r)
		}
	}
	return out
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	req := Request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Raw: raw, At: time.Now()}
	if len(bytes.TrimSpace(raw)) > 0 {
		_ = json.Unmarshal(raw, &req.Body)
	}
	s.mu.Lock()
	s.requests = append(s.requests, req)
	var resp Response
	q := s.queues[r.URL.Path]
	scripted := len(q) > 0
	if scripted {
		resp, s.queues[r.URL.Path] = q[0], q[1:]
	}
	dims := s.EmbeddingDims
	s.mu.Unlock()

	if !scripted {
		switch {
		case r.Method == http.MethodPost && r.URL.Path == EmbeddingsPath:
			resp = embeddings(req, dims)
		case r.Method == http.MethodGet && r.URL.Path == ModelsPath:
			resp = models()
		default:
			s.t.Errorf("openaitest: unexpected %s %s: no response scripted", r.Method, r.URL.Path)
			resp = Error(http.StatusInternalServerError, "openaitest: no response scripted", "server_error", "")
		}
	}
	if resp.Delay > 0 {
		t := time.NewTimer(resp.Delay)
		defer t.Stop()
		select {
		case <-r.Context().Done():
			return
		case <-t.C:
		}
	}
	body := resp.Body
	if resp.chat != nil {
		body = resp.chat.body(req)
	}
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	status := resp.Status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// Error is an OpenAI error reply: {"error":{"message","type","code"}}.
func Error(status int, message, typ, code string) Response {
	e := map[string]any{"message": message, "type": typ, "param": nil, "code": nil}
	if code != "" {
		e["code"] = code
	}
	b, _ := json.Marshal(map[string]any{"error": e})
	return Response{Status: status, Body: b}
}

// RateLimited is a 429 whose Retry-After asks for d (in seconds, with
// decimals for sub-second waits).
func RateLimited(d time.Duration) Response {
	r := Error(http.StatusTooManyRequests, "Rate limit reached for requests", "requests", "rate_limit_exceeded")
	r.Header = http.Header{"Retry-After": {fmt.Sprintf("%g", d.Seconds())}}
	return r
}

// ServerError is a 500 with an OpenAI error body.
func ServerError() Response {
	return Error(http.StatusInternalServerError, "The server had an error while processing your request.", "server_error", "")
}

// Raw is a reply with any status and body, such as malformed JSON.
func Raw(status int, body string) Response { return Response{Status: status, Body: []byte(body)} }
