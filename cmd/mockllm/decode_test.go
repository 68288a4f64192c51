package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

// sampleChat is a request as the LLM grader sends it, with what makes
// parsing hard: escapes of every kind, HTML-escaped tags, text outside
// ASCII, fields the mock does not read, a nested schema.
func sampleChat(t testing.TB) []byte {
	body, err := json.Marshal(map[string]any{
		"model": "mock-grader",
		"messages": []map[string]any{
			{"role": "system", "content": "Grade it.\n\nCriterion a: Alpha \"quoted\" \\ / \t tab\nKey points:\n- k1: Token buckets.\n"},
			{"role": "user", "content": "<answer_0a1b>\nA café, naïve 😀 \u2028 & <b> \x01.\n</answer_0a1b>\n", "name": "candidate"},
		},
		"temperature": 0, "seed": -12, "top_p": 1.5e-3, "max_completion_tokens": 2000, "stream": false, "stop": nil,
		"response_format": map[string]any{"type": "json_schema", "json_schema": map[string]any{
			"name": "grading", "strict": true,
			"schema": map[string]any{"type": "object", "properties": map[string]any{"criteria": map[string]any{
				"type": "array", "items": map[string]any{"properties": map[string]any{"id": map[string]any{"enum": []string{"a"}}}}}},
				"required": []string{"criteria"}, "additionalProperties": false},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// checkParse fails when parseChat takes a body and decodes it otherwise
// than json.Unmarshal, and reports whether it took it.
func checkParse(t testing.TB, body []byte) bool {
	var fast, std chatRequest
	if !parseChat(body, &fast) {
		return false
	}
	if err := json.Unmarshal(body, &std); err != nil {
		t.Fatalf("parseChat took a body json.Unmarshal rejects (%v):\n%q", err, body)
	}
	if !reflect.DeepEqual(fast, std) {
		t.Fatalf("parseChat and json.Unmarshal differ on\n%q:\n%#v\n%#v", body, fast, std)
	}
	return true
}

func TestParseChatAgreesWithEncodingJSON(t *testing.T) {
	sample := sampleChat(t)
	taken := []string{
		string(sample),
		`{"messages":[{"role":"user","content":"x"}]}`,
		" \r\n\t{ \"model\" : \"m\" , \"messages\" : [ ] } \n",
		`{"messages":[{"role":"user","content":"\u00e9\u2028\"\\\/\b\f\n\r\t"}],"response_format":{"type":"text"}}`,
		`{"response_format":{"json_schema":{"schema":{}}},"messages":[{}]}`,
		`{"x":[1,-0.5e+3,true,false,null,{"a":[]},"s\u0000"],"messages":[]}`,
		`{"Modelx":"m","messages":[]}`,
	}
	for _, s := range taken {
		if !checkParse(t, []byte(s)) {
			t.Errorf("parseChat did not take %q", s)
		}
	}
	// Left to encoding/json: each of these differs from the plain case in
	// something where its rules decide.
	left := []string{
		``, `[]`, `null`, `{`, `{"messages":[]} x`, `{"messages":[],}`, `{"MODEL":"m"}`, `{"model":"a","model":"b"}`,
		`{"model":null}`, `{"model":5}`, `{"messages":null}`, `{"messages":[null]}`, `{"messages":[{"role":1}]}`,
		`{"response_format":null}`, `{"response_format":{"json_schema":null}}`, `{"response_format":{"json_schema":{"schema":[]}}}`,
		`{"response_format":{"json_schema":{"schema":{},"Schema":{}}}}`, `{"model":"\ud83d\ude00"}`, `{"model":"\ud83d"}`,
		"{\"model\":\"\xff\"}", "{\"model\":\"a\x01\"}", `{"model":"\x"}`, `{"model":"\u12"}`, `{"x":01}`, `{"x":1.}`,
		`{"x":-}`, `{"x":1e}`, `{"x":tru}`, `{"x":"a}`, `{"mo\u0064el":"m"}`, "{\"meſſages\":[]}", `{"x":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}`,
	}
	for _, s := range left {
		if checkParse(t, []byte(s)) {
			t.Errorf("parseChat took %q", s)
		}
	}
	// Random damage to the sample: whatever parseChat still takes must
	// decode as encoding/json decodes it.
	rng := rand.New(rand.NewPCG(1, 2))
	const chars = "{}[]\":,\\ \nutfnlr0123456789eE.+-aAÿ\x01\x7f"
	took := 0
	for range 20000 {
		b := bytes.Clone(sample)
		for range 1 + rng.IntN(3) {
			i := rng.IntN(len(b))
			switch rng.IntN(4) {
			case 0:
				b[i] = chars[rng.IntN(len(chars))]
			case 1:
				b = append(b[:i], b[i+1:]...)
			case 2:
				b = append(b[:i], append([]byte{chars[rng.IntN(len(chars))]}, b[i:]...)...)
			case 3:
				b[i] ^= 0x20 // case
			}
		}
		if checkParse(t, b) {
			took++
		}
	}
	if took == 0 {
		t.Error("parseChat took none of the damaged bodies; the test checks nothing")
	}
}

func FuzzParseChat(f *testing.F) {
	f.Add(sampleChat(f))
	f.Add([]byte(`{"messages":[{"role":"user","content":"\u003cx\u003e"}],"response_format":{"type":"json_object"}}`))
	f.Fuzz(func(t *testing.T, body []byte) { checkParse(t, body) })
}

// TestDecodeChatKeepsTheDecodersAnswers: bodies parseChat leaves get what
// a json.Decoder gave before, errors worded alike.
func TestDecodeChatKeepsTheDecodersAnswers(t *testing.T) {
	for _, s := range []string{``, `{`, `[]`, `{"messages":5}`, `{"messages":[]} trailing`, `{"model":"\ud83d","messages":[]}`, string(sampleChat(t))} {
		var got, want chatRequest
		w := httptest.NewRecorder()
		gotErr := decodeChat(w, httptest.NewRequest(http.MethodPost, "/", strings.NewReader(s)), &got)
		wantErr := json.NewDecoder(strings.NewReader(s)).Decode(&want)
		if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) || gotErr == nil && !reflect.DeepEqual(got, want) {
			t.Errorf("%q: got %v %+v, want %v %+v", s, gotErr, got, wantErr, want)
		}
	}
	big := strings.NewReader(`{"model":"` + strings.Repeat("x", 5<<20) + `"}`)
	var req chatRequest
	if err := decodeChat(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/", big), &req); err == nil ||
		!strings.Contains(err.Error(), "too large") {
		t.Errorf("a 5 MB body: %v", err)
	}
}
