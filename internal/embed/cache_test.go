package embed_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/assay-dev/assay/internal/embed"
)

// countingEmbedder embeds a text as its length and counts the texts it saw.
type countingEmbedder struct {
	texts int
	fail  bool
}

func (e *countingEmbedder) Model() string { return "counting" }

func (e *countingEmbedder) Embed(_ context.Context, texts []string) ([][]float32, error) {
	if e.fail {
		return nil, errors.New("model down")
	}
	e.texts += len(texts)
	out := make([][]float32, len(texts))
	for i, t := range texts {
		out[i] = []float32{float32(len(t)), 1}
	}
	return out, nil
}

func TestCache(t *testing.T) {
	tests := []struct {
		name      string
		calls     [][]string
		wantTexts int // texts the wrapped embedder saw
	}{
		{"a repeated question is embedded once", [][]string{{"q1"}, {"q1"}, {"q1"}}, 1},
		{"different questions each once", [][]string{{"q1"}, {"q22"}, {"q1"}, {"q22"}}, 2},
		{"several texts pass through", [][]string{{"a", "b"}, {"a", "b"}}, 4},
		{"bounded: emptied when full", [][]string{{"1"}, {"22"}, {"333"}, {"1"}}, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			next := &countingEmbedder{}
			c := embed.NewCache(next, 2)
			for _, texts := range tc.calls {
				got, err := c.Embed(t.Context(), texts)
				if err != nil {
					t.Fatal(err)
				}
				for i, text := range texts {
					if want := []float32{float32(len(text)), 1}; !slices.Equal(got[i], want) {
						t.Errorf("Embed(%q) = %v, want %v", text, got[i], want)
					}
				}
			}
			if next.texts != tc.wantTexts {
				t.Errorf("wrapped embedder saw %d texts, want %d", next.texts, tc.wantTexts)
			}
		})
	}
}

func TestCacheCopiesAndErrors(t *testing.T) {
	next := &countingEmbedder{}
	c := embed.NewCache(next, 8)
	v, _ := c.Embed(t.Context(), []string{"abc"})
	v[0][0] = 99 // a caller changing its vector must not change the cache
	again, _ := c.Embed(t.Context(), []string{"abc"})
	if again[0][0] != 3 {
		t.Errorf("cached vector changed by a caller: %v", again[0])
	}
	next.fail = true
	if _, err := c.Embed(t.Context(), []string{"new"}); err == nil {
		t.Error("error of the wrapped embedder not returned")
	}
	next.fail = false
	if _, err := c.Embed(t.Context(), []string{"new"}); err != nil {
		t.Errorf("after an error: %v", err)
	}
	if next.texts != 2 {
		t.Errorf("wrapped embedder saw %d texts, want 2 (a failure is not remembered)", next.texts)
	}
	if c.Model() != "counting" {
		t.Errorf("Model = %q", c.Model())
	}
}
