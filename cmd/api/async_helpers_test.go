package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Helpers of the asynchronous acceptance tests: the mock LLM as a real
// process, requests with headers, polling, Server-Sent Events and SQL.

var (
	mockOnce sync.Once
	mockPath string
	mockErr  error
)

var mockllmAddr = regexp.MustCompile(`mockllm listening on (http://\S+/v1)`)

// mockLLM builds and runs cmd/mockllm with args and returns its base URL.
func mockLLM(t *testing.T, args ...string) string {
	t.Helper()
	mockOnce.Do(func() {
		dir, err := os.MkdirTemp("", "assay-mockllm")
		if err != nil {
			mockErr = err
			return
		}
		mockPath = filepath.Join(dir, "mockllm")
		if out, err := exec.Command("go", "build", "-o", mockPath, "../mockllm").CombinedOutput(); err != nil {
			mockErr = fmt.Errorf("%v\n%s", err, out)
		}
	})
	if mockErr != nil {
		t.Fatalf("building cmd/mockllm: %v", mockErr)
	}
	cmd := exec.Command(mockPath, append([]string{"--addr", "127.0.0.1:0"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGKILL); _ = cmd.Wait() })
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := mockllmAddr.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	select {
	case u := <-found:
		return u
	case <-time.After(30 * time.Second):
		t.Fatal("mockllm did not start")
		return ""
	}
}

// llmEnv is the environment of a server on db grading with the mock LLM
// at llm, with a rate limit no test reaches.
func llmEnv(db, llm string, extra ...string) []string {
	return append([]string{"DATABASE_URL=" + db, "OPENAI_BASE_URL=" + llm, "ASSAY_LLM_MODEL=mock-grader",
		"ASSAY_RATE_LIMIT_RPS=100000", "ASSAY_RATE_LIMIT_BURST=100000"}, extra...)
}

// send makes a request with headers in kv pairs and returns the response
// and its body.
func (p *process) send(t *testing.T, method, path, body string, kv ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, p.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Set(kv[i], kv[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// queryInt runs a query that returns one integer on the database at db.
func queryInt(t *testing.T, db, sql string, args ...any) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// batchItems returns a batch body of n answers to the rate-limiting
// question, each different so no grading is reused from the cache.
func batchItems(from, n int) string {
	items := make([]string, n)
	for i := range n {
		items[i] = fmt.Sprintf(`{"question":"What is rate limiting and how do you implement it?","answer":"A token bucket per API key, kept in Redis, refilled at a steady rate; over the limit the API answers 429 with Retry-After. (answer %d)"}`, from+i)
	}
	return `{"items":[` + strings.Join(items, ",") + `]}`
}

// sse is one Server-Sent Event.
type sse struct {
	Name string
	Data map[string]any
	At   time.Time
}

// readSSE reads a whole event stream (until the server ends it).
func readSSE(t *testing.T, url string) []sse {
	t.Helper()
	es, err := streamEvents(url)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// streamEvents is readSSE for any goroutine: it returns its error.
func streamEvents(url string) ([]sse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("GET %s = %d %s", url, resp.StatusCode, b)
	}
	var out []sse
	var cur sse
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			cur.Name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &cur.Data); err != nil {
				return out, fmt.Errorf("event data is not JSON: %v", err)
			}
		case line == "" && cur.Name != "":
			cur.At = time.Now()
			out = append(out, cur)
			cur = sse{}
		}
	}
	if ctx.Err() != nil {
		return out, fmt.Errorf("the stream did not end: %v", ctx.Err())
	}
	return out, nil
}

func eventNames(es []sse) []string {
	names := make([]string, len(es))
	for i, e := range es {
		names[i] = e.Name
	}
	return names
}
