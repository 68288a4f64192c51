package embed

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"hash/fnv"
	"math"
	"strings"
	"testing"

	"github.com/assay-dev/assay/internal/rubric"
	"github.com/assay-dev/assay/internal/text"
	"github.com/assay-dev/assay/rubrics"
)

func seedEmbedder(t testing.TB) (*Local, []rubric.Rubric) {
	t.Helper()
	rs, err := rubric.Load(rubrics.FS)
	if err != nil {
		t.Fatal(err)
	}
	return NewLocalForBank(rs), rs
}

// queries are texts the server embeds: questions (every request without a
// rubric_id) and whole answers (requests without a question).
func queries(t testing.TB, rs []rubric.Rubric) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Question)
		out = append(out, r.Aliases...)
		out = append(out, r.ReferenceAnswer)
	}
	return append(out, "", "the of and", "Ünïcödé wörds İstanbul ΣΊΣΥΦΟΣ 日本語", "k8s db throttling paginated authz")
}

// BenchmarkLocalEmbed embeds one question per op, as the server does for a
// request that names no rubric. "before" is the feature hashing this one
// replaced (refLocal, same vectors), on the current tokenizer.
func BenchmarkLocalEmbed(b *testing.B) {
	l, rs := seedEmbedder(b)
	ref := refNewLocalForBank(rs)
	var qs []string
	for _, r := range rs {
		qs = append(qs, r.Question)
	}
	benchEmbed(b, l, ref, qs)
}

// BenchmarkLocalEmbedAnswer embeds a whole reference answer per op (a
// request with neither question nor rubric_id embeds the answer).
func BenchmarkLocalEmbedAnswer(b *testing.B) {
	l, rs := seedEmbedder(b)
	ref := refNewLocalForBank(rs)
	var as []string
	for _, r := range rs {
		as = append(as, r.ReferenceAnswer)
	}
	benchEmbed(b, l, ref, as)
}

func benchEmbed(b *testing.B, l *Local, ref *refLocal, texts []string) {
	ctx := context.Background()
	b.Run("now", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := l.Embed(ctx, []string{texts[i%len(texts)]}); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("before", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			ref.vector(texts[i%len(texts)])
			i++
		}
	})
}

// BenchmarkNewLocalForBank builds the embedder's idf table (server start).
func BenchmarkNewLocalForBank(b *testing.B) {
	_, rs := seedEmbedder(b)
	b.ReportAllocs()
	for b.Loop() {
		NewLocalForBank(rs)
	}
}

// TestLocalMatchesReference checks that the embedder gives bit for bit the
// vectors and model name of the straightforward implementation it was
// optimised from: stored vectors stay valid.
func TestLocalMatchesReference(t *testing.T) {
	l, rs := seedEmbedder(t)
	ref := refNewLocalForBank(rs)
	if l.Model() != ref.model {
		t.Fatalf("model %q, reference %q", l.Model(), ref.model)
	}
	if len(l.idf) != len(ref.idf) {
		t.Fatalf("%d idf entries, reference %d", len(l.idf), len(ref.idf))
	}
	for k, v := range ref.idf {
		if l.idf[k] != v {
			t.Fatalf("idf[%q] = %v, reference %v", k, l.idf[k], v)
		}
	}
	var texts []string
	for _, r := range rs {
		texts = append(texts, r.SearchTexts()...)
	}
	texts = append(texts, queries(t, rs)...)
	got, err := l.Embed(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range texts {
		want := ref.vector(s)
		for j := range want {
			if math.Float32bits(got[i][j]) != math.Float32bits(want[j]) {
				t.Fatalf("text %d (%.40q): component %d = %v, reference %v", i, s, j, got[i][j], want[j])
			}
		}
	}
}

// The reference implementation: the code before optimisation.

type refLocal struct {
	idf     map[string]float64
	maxIDF  float64
	model   string
	synonym map[string]string
}

func refNewLocalForBank(bank []rubric.Rubric) *refLocal {
	docs := make([]string, len(bank))
	for i, r := range bank {
		docs[i] = strings.Join(r.SearchTexts(), "\n")
	}
	h := sha256.New()
	for _, d := range docs {
		h.Write([]byte(d))
		h.Write([]byte{0})
	}
	n := float64(len(docs))
	return &refLocal{idf: refIDF(docs), maxIDF: math.Log((n+1)/1) + 1,
		model: "local-v1-" + hex.EncodeToString(h.Sum(nil))[:8], synonym: synonyms()}
}

func refIDF(corpus []string) map[string]float64 {
	df := map[string]int{}
	for _, doc := range corpus {
		seen := map[string]bool{}
		for _, tok := range text.Tokenize(doc) {
			for _, f := range append(refCharGrams(tok.Word), tok.Stem) {
				if !seen[f] {
					seen[f] = true
					df[f]++
				}
			}
		}
	}
	n := float64(len(corpus))
	idf := map[string]float64{}
	for s, d := range df {
		idf[s] = math.Log((n+1)/float64(d+1)) + 1
	}
	return idf
}

func (l *refLocal) weight(stem string) float64 {
	if w, ok := l.idf[stem]; ok {
		return w
	}
	return l.maxIDF
}

func (l *refLocal) vector(s string) []float32 {
	v := make([]float64, LocalDims)
	var prev string
	for _, tok := range text.Tokenize(s) {
		if text.IsStop(tok.Word) {
			prev = ""
			continue
		}
		stem := tok.Stem
		if syn, ok := l.synonym[stem]; ok {
			stem = syn
		}
		w := l.weight(stem)
		refAdd(v, "w:"+stem, w)
		if prev != "" {
			refAdd(v, "b:"+prev+" "+stem, bigramWeight*(w+l.weight(prev))/2)
		}
		prev = stem
		for _, g := range refCharGrams(tok.Word) {
			refAdd(v, "c:"+g, charWeight*l.weight(g))
		}
	}
	var norm float64
	for _, x := range v {
		norm += x * x
	}
	out := make([]float32, LocalDims)
	if norm == 0 {
		return out
	}
	norm = math.Sqrt(norm)
	for i, x := range v {
		out[i] = float32(x / norm)
	}
	return out
}

func refCharGrams(word string) []string {
	w := "^" + word + "$"
	if len(w) <= charN+1 {
		return nil
	}
	out := make([]string, 0, len(w)-charN+1)
	for i := 0; i+charN <= len(w); i++ {
		out = append(out, w[i:i+charN])
	}
	return out
}

func refAdd(v []float64, f string, w float64) {
	h := fnv.New64a()
	h.Write([]byte(f))
	x := h.Sum64()
	i := int(x % LocalDims)
	if x>>63 == 1 {
		w = -w
	}
	v[i] += w
}
