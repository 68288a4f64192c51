package grader

import (
	"context"
	"slices"
	"testing"

	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/fault"
	"github.com/assay-dev/assay/internal/openaitest"
)

func TestLLMFormats(t *testing.T) {
	r := testRubric(t)
	tests := []struct {
		format, reply, wantType, inPrompt string
	}{
		{FormatJSONObject, validReply(r).JSON(), "json_object", `"criteria":[{"id":"<criterion id>"`},
		{FormatText, "Here is the grading.\n```json\n" + validReply(r).JSON() + "\n```\nDone.", "", "```json fenced block"},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			srv := openaitest.New(t)
			srv.Enqueue(openaitest.Chat(tt.reply))
			l := newTestLLM(t, srv, func(c *LLMConfig) { c.ResponseFormat = tt.format })
			g, err := gradeLLM(l, r, testAnswer)
			if err != nil {
				t.Fatalf("Grade: %v", err)
			}
			if err := g.Check(r, testAnswer); err != nil {
				t.Fatal(err)
			}
			req := srv.ChatRequests()[0].Chat()
			gotType := ""
			if req.ResponseFormat != nil {
				gotType = req.ResponseFormat.Type
			}
			if gotType != tt.wantType {
				t.Errorf("response_format type = %q, want %q", gotType, tt.wantType)
			}
			if !contains(req.Messages[0].Content, tt.inPrompt) {
				t.Errorf("system prompt lacks %q", tt.inPrompt)
			}
		})
	}
	t.Run("text without a fence", func(t *testing.T) {
		srv := openaitest.New(t)
		srv.Enqueue(openaitest.Chat("I think it is level 3."), openaitest.Chat("```json\n"+validReply(r).JSON()+"\n```"))
		l := newTestLLM(t, srv, func(c *LLMConfig) { c.ResponseFormat = FormatText })
		if _, err := gradeLLM(l, r, testAnswer); err != nil {
			t.Fatalf("Grade: %v", err)
		}
		if msgs := srv.ChatRequests()[1].Chat().Messages; !contains(msgs[3].Content, "fenced block") {
			t.Errorf("repair request = %q", msgs[3].Content)
		}
	})
	if _, err := NewLLM(LLMConfig{Model: "m", ResponseFormat: "yaml"}); err == nil {
		t.Error("NewLLM accepted response format yaml")
	}
}

func TestLLMSelfConsistency(t *testing.T) {
	r := testRubric(t)
	srv := openaitest.New(t)
	// purpose 1,2,2 -> 2; algorithms 3,3,3 -> 3; distributed 0,4,2 -> 2;
	// client-contract 2,3,4 -> 3. Agreement 2/3, 1, 1/3, 1/3 -> 0.58.
	levels := [][4]int{{1, 3, 0, 2}, {2, 3, 4, 3}, {2, 3, 2, 4}}
	for i, ls := range levels {
		rep := validReply(r)
		for ci, l := range ls {
			rep.Criteria[ci].Level = l
		}
		if i < 2 {
			rep.Misconceptions = []map[string]string{{"id": "stops-ddos", "quote": ""}}
		} else {
			rep.Misconceptions = []map[string]string{{"id": "wrong-status", "quote": ""}}
		}
		srv.Enqueue(openaitest.Chat(rep.JSON()))
	}
	l := newTestLLM(t, srv, nil)
	g, err := l.Grade(context.Background(), evaluation.GradeInput{Rubric: r, Answer: testAnswer, Samples: 3})
	if err != nil {
		t.Fatalf("Grade: %v", err)
	}
	if err := g.Check(r, testAnswer); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"purpose": 2, "algorithms": 3, "distributed": 2, "client-contract": 3}
	if got := levelsOf(g); !mapsEqual(got, want) {
		t.Errorf("levels = %v, want medians %v", got, want)
	}
	if g.Confidence == nil || *g.Confidence != 0.58 || g.Samples != 3 {
		t.Errorf("confidence %v samples %d, want 0.58 and 3", g.Confidence, g.Samples)
	}
	if len(g.Misconceptions) != 1 || g.Misconceptions[0].ID != "stops-ddos" {
		t.Errorf("misconceptions = %+v, want the majority's stops-ddos", g.Misconceptions)
	}
	if g.Usage.Prompt != 3*openaitest.DefaultPromptTokens {
		t.Errorf("usage = %+v, want three calls", g.Usage)
	}
	var seeds []int
	for _, req := range srv.ChatRequests() {
		c := req.Chat()
		if c.Temperature == nil || *c.Temperature != DefaultLLMSampleTemp {
			t.Errorf("sample temperature = %v, want %v", c.Temperature, DefaultLLMSampleTemp)
		}
		seeds = append(seeds, *c.Seed)
	}
	slices.Sort(seeds)
	if !slices.Equal(seeds, []int{7, 8, 9}) {
		t.Errorf("seeds = %v, want 7, 8, 9", seeds)
	}
	if *g.Temperature != DefaultLLMSampleTemp {
		t.Errorf("grading temperature = %v", *g.Temperature)
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestCombineToleratesAMinorityOfFailures(t *testing.T) {
	r := testRubric(t)
	srv := openaitest.New(t)
	srv.Enqueue(openaitest.Chat(validReply(r).JSON()), openaitest.Chat(validReply(r).JSON()),
		openaitest.Refusal("no"))
	g, err := newTestLLM(t, srv, nil).Grade(context.Background(), evaluation.GradeInput{Rubric: r, Answer: testAnswer, Samples: 3})
	if err != nil {
		t.Fatalf("Grade: %v", err)
	}
	if g.Samples != 2 || *g.Confidence != 1 {
		t.Errorf("samples %d confidence %v, want 2 and 1", g.Samples, *g.Confidence)
	}
	srv.Enqueue(openaitest.Refusal("no"), openaitest.Refusal("no"), openaitest.Chat(validReply(r).JSON()))
	_, err = newTestLLM(t, srv, nil).Grade(context.Background(), evaluation.GradeInput{Rubric: r, Answer: testAnswer, Samples: 3})
	if fault.KindOf(err) != fault.Upstream {
		t.Errorf("err = %v, want the samples' upstream error", err)
	}
}

func TestParsePrices(t *testing.T) {
	got, err := ParsePrices(" gpt-4o-mini=0.15/0.60, gpt-4o=2.5/10 ,")
	want := map[string]Price{"gpt-4o-mini": {0.15, 0.60}, "gpt-4o": {2.5, 10}}
	if err != nil || len(got) != len(want) || got["gpt-4o-mini"] != want["gpt-4o-mini"] || got["gpt-4o"] != want["gpt-4o"] {
		t.Errorf("ParsePrices = %v, %v; want %v", got, err, want)
	}
	for _, bad := range []string{"gpt-4o", "gpt-4o=1", "=1/2", "m=a/b", "m=-1/2"} {
		if _, err := ParsePrices(bad); err == nil {
			t.Errorf("ParsePrices(%q) accepted", bad)
		}
	}
	if got, err := ParsePrices(""); err != nil || len(got) != 0 {
		t.Errorf("ParsePrices(\"\") = %v, %v", got, err)
	}
}
