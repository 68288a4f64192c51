package grader

import (
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/pkoukk/tiktoken-go"
	tiktoken_loader "github.com/pkoukk/tiktoken-go-loader"

	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/rubric"
	"github.com/assay-dev/assay/rubrics"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/golden")

// TestPromptGolden pins the rendered prompt of api-rate-limiting for a
// fixed answer. Run with -update after changing a template on purpose.
func TestPromptGolden(t *testing.T) {
	l, err := NewLLM(LLMConfig{Model: testModel})
	if err != nil {
		t.Fatal(err)
	}
	p, err := l.render(evaluation.GradeInput{Rubric: testRubric(t), Answer: testAnswer}, FormatJSONSchema)
	if err != nil {
		t.Fatal(err)
	}
	got := "=== system ===\n" + p.system + "\n=== user ===\n" + p.user
	path := filepath.Join("testdata", "golden", "prompt_api-rate-limiting.golden")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestPromptGolden -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("rendered prompt differs from %s (rerun with -update if intended):\n%s", path, firstDiff(string(want), got))
	}
}

func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := range max(len(w), len(g)) {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return "line " + itoa(i+1) + ":\n  want: " + a + "\n  got:  " + b
		}
	}
	return ""
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestPromptVersionFollowsTemplates(t *testing.T) {
	base, err := loadPrompts(nil)
	if err != nil {
		t.Fatal(err)
	}
	custom := fstest.MapFS{
		"system.tmpl": {Data: []byte("Grade {{.Rubric.ID}} as JSON.")},
		"user.tmpl":   {Data: []byte("<{{.Tag}}>{{.Answer}}</{{.Tag}}>")},
	}
	other, err := loadPrompts(custom)
	if err != nil {
		t.Fatal(err)
	}
	if base.version == other.version || len(other.version) != 12 {
		t.Errorf("versions %q and %q: want different 12-digit hashes", base.version, other.version)
	}
	again, _ := loadPrompts(nil)
	if again.version != base.version {
		t.Error("prompt version is not stable")
	}
	if _, err := NewLLM(LLMConfig{Model: "m", Prompts: fstest.MapFS{"system.tmpl": {Data: []byte("x")}}}); err == nil {
		t.Error("NewLLM accepted prompts without user.tmpl")
	}
	bad := fstest.MapFS{"system.tmpl": {Data: []byte("{{.Nope}}")}, "user.tmpl": {Data: []byte("x")}}
	l, err := NewLLM(LLMConfig{Model: "m", Prompts: bad})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.render(evaluation.GradeInput{Rubric: testRubric(t), Answer: "a"}, FormatJSONSchema); err == nil {
		t.Error("a template using an unknown field rendered")
	}
}

// encoding loads o200k_base (gpt-4o and later) from the BPE tables that
// tiktoken-go-loader embeds: no download.
func encoding(t testing.TB) *tiktoken.Tiktoken {
	t.Helper()
	tiktoken.SetBpeLoader(tiktoken_loader.NewOfflineLoader())
	enc, err := tiktoken.GetEncoding("o200k_base")
	if err != nil {
		t.Fatalf("loading o200k_base offline: %v", err)
	}
	return enc
}

// chatTokens counts a chat prompt as OpenAI bills it: 3 tokens per message
// and 3 to prime the reply, plus the contents.
func chatTokens(enc *tiktoken.Tiktoken, p *prompt) int {
	return 3 + 3 + len(enc.Encode(p.system, nil, nil)) + 3 + len(enc.Encode(p.user, nil, nil))
}

// words300 makes a ~300-word answer from the rubric's reference answer.
func words300(r rubric.Rubric) string {
	var w []string
	for len(w) < 300 {
		w = append(w, strings.Fields(r.ReferenceAnswer)...)
	}
	return strings.Join(w[:300], " ")
}

// TestPromptTokens measures the prompt of the median seed rubric (by
// prompt size) with a 300-word answer and keeps it under 1500 tokens.
func TestPromptTokens(t *testing.T) {
	enc := encoding(t)
	rs, err := rubric.Load(rubrics.FS)
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewLLM(LLMConfig{Model: testModel})
	if err != nil {
		t.Fatal(err)
	}
	type measured struct {
		id                       string
		tokens, schema, estimate int
	}
	var ms []measured
	for _, r := range rs {
		p, err := l.render(evaluation.GradeInput{Rubric: r, Answer: words300(r)}, FormatJSONSchema)
		if err != nil {
			t.Fatal(err)
		}
		sch, _ := p.schema.MarshalJSON()
		ms = append(ms, measured{r.ID, chatTokens(enc, p), len(enc.Encode(string(sch), nil, nil)), p.tokens})
	}
	slices.SortFunc(ms, func(a, b measured) int { return a.tokens - b.tokens })
	med := ms[len(ms)/2]
	t.Logf("prompt tokens (o200k_base), 300-word answer: median rubric %s %d (+%d for the JSON schema); smallest %s %d, largest %s %d",
		med.id, med.tokens, med.schema, ms[0].id, ms[0].tokens, ms[len(ms)-1].id, ms[len(ms)-1].tokens)
	if med.tokens >= 1500 {
		t.Errorf("median prompt is %d tokens, want < 1500", med.tokens)
	}
	// The ceiling's estimate (messages and schema) must not undercount
	// much, nor overcount so much that it refuses fair answers.
	lo, hi := math.Inf(1), 0.0
	for _, m := range ms {
		exact := m.tokens + m.schema
		ratio := float64(m.estimate) / float64(exact)
		lo, hi = min(lo, ratio), max(hi, ratio)
		if ratio < 1 || ratio > 1.3 {
			t.Errorf("%s: estimate %d for %d tokens (ratio %.2f), want within 1 to 1.3", m.id, m.estimate, exact, ratio)
		}
	}
	t.Logf("estimate / exact (messages and schema): %.2f to %.2f", lo, hi)
}

func TestEstimateTokensOnAnswers(t *testing.T) {
	enc := encoding(t)
	for _, a := range loadAnswers(t) {
		for _, s := range []string{a.Strong, a.Partial, a.Wrong} {
			exact := len(enc.Encode(s, nil, nil))
			if est := EstimateTokens(s); float64(est) < 0.9*float64(exact) || float64(est) > 1.4*float64(exact) {
				t.Errorf("%s: estimate %d for %d tokens", a.Rubric, est, exact)
			}
		}
	}
}
