package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/gradings.golden")

// goldenCase is an answer and the grading the mock gives it.
type goldenCase struct {
	Answer  string     `json:"answer"`
	Grading gradingOut `json:"grading"`
}

// TestGradingsAreStable grades the answers of testdata/gradings.golden
// through the handler, in a request the LLM grader sent
// (testdata/chat_request.json), and compares the gradings with the ones
// there, which the mock gave before its grading was made faster: its
// output is part of what the benchmark measures. The answers exercise
// every part of the grading: levels, evidence, key points,
// misconceptions, both flags, text outside ASCII.
func TestGradingsAreStable(t *testing.T) {
	raw, err := os.ReadFile("testdata/chat_request.json")
	if err != nil {
		t.Fatal(err)
	}
	var req map[string]any
	if err := json.Unmarshal(raw, &req); err != nil {
		t.Fatal(err)
	}
	golden, err := os.ReadFile("testdata/gradings.golden")
	if err != nil {
		t.Fatal(err)
	}
	var want []goldenCase
	if err := json.Unmarshal(golden, &want); err != nil {
		t.Fatal(err)
	}
	h := newHandler(options{dims: 8})
	var got []goldenCase
	for _, c := range want {
		req["messages"].([]any)[1].(map[string]any)["content"] = "<answer_1234abcd>\n" + c.Answer + "\n</answer_1234abcd>\n"
		body, _ := json.Marshal(req)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/chat/completions", bytes.NewReader(body)))
		var resp struct {
			Choices []struct{ Message struct{ Content string } }
		}
		if err := json.Unmarshal(w.Body.Bytes(), &resp); w.Code != http.StatusOK || err != nil || len(resp.Choices) != 1 {
			t.Fatalf("status %d, %v: %s", w.Code, err, w.Body)
		}
		g := goldenCase{Answer: c.Answer}
		if err := json.Unmarshal([]byte(resp.Choices[0].Message.Content), &g.Grading); err != nil {
			t.Fatal(err)
		}
		got = append(got, g)
	}
	out, _ := json.MarshalIndent(got, "", " ")
	out = append(out, '\n')
	if *update {
		if err := os.WriteFile("testdata/gradings.golden", out, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !bytes.Equal(out, golden) {
		t.Errorf("gradings differ from testdata/gradings.golden (go test -run TestGradingsAreStable -update to accept):\n%s", out)
	}
}
