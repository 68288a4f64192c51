package text

import (
	"io/fs"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/assay-dev/assay/rubrics"
)

// corpus is the text of the seed rubrics, plus some awkward strings.
func corpus(t testing.TB) []string {
	t.Helper()
	var out []string
	err := fs.WalkDir(rubrics.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") {
			return err
		}
		b, err := fs.ReadFile(rubrics.FS, p)
		out = append(out, string(b))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, "", " ", "Ünïcödé wörds, İstanbul ΣΊΣΥΦΟΣ and 日本語の文章。Done!", "a;b\nc. D? e! f", "RETRY-AFTER retry after",
		"caches caching cached classes analysis status buses flies ties", "x\u0301y Kelvin \u212a ſ", "- bullet\n* star\n• dot")
	return out
}

// BenchmarkTokenize tokenizes the seed rubrics: one op is one rubric file.
// "before" is the implementation this one replaced (refTokenize).
func BenchmarkTokenize(b *testing.B) {
	docs := corpus(b)[:20]
	for _, bc := range []struct {
		name string
		f    func(string) []Token
	}{{"now", Tokenize}, {"before", refTokenize}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				bc.f(docs[i%len(docs)])
				i++
			}
		})
	}
}

// BenchmarkSentences splits the seed rubrics into sentences with tokens.
func BenchmarkSentences(b *testing.B) {
	docs := corpus(b)[:20]
	for _, bc := range []struct {
		name string
		f    func(string) []Sentence
	}{{"now", Sentences}, {"before", refSentences}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				bc.f(docs[i%len(docs)])
				i++
			}
		})
	}
}

// TestMatchesReference checks Tokenize, Stem and Sentences against the
// straightforward implementations they were optimised from.
func TestMatchesReference(t *testing.T) {
	docs := corpus(t)
	rng := rand.New(rand.NewPCG(3, 4))
	alphabet := []rune("abcXYZ019 .;!?\n\t-*•éİıſ\u212aΣσς日")
	for range 3000 {
		n := rng.IntN(40)
		r := make([]rune, n)
		for i := range r {
			r[i] = alphabet[rng.IntN(len(alphabet))]
		}
		docs = append(docs, string(r))
	}
	for _, d := range docs {
		if got, want := Tokenize(d), refTokenize(d); !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Fatalf("Tokenize(%q)\n got %v\nwant %v", d, got, want)
		}
		if got, want := Sentences(d), refSentences(d); !reflect.DeepEqual(got, want) {
			t.Fatalf("Sentences(%q)\n got %v\nwant %v", d, got, want)
		}
		for _, w := range strings.Fields(strings.ToLower(d)) {
			if got, want := Stem(w), refStem(w); got != want {
				t.Fatalf("Stem(%q) = %q, want %q", w, got, want)
			}
		}
	}
}

// The reference implementations: the code before optimisation.

func refTokenize(s string) []Token {
	toks := make([]Token, 0, len(s)/5)
	var b strings.Builder
	start, pos := -1, 0
	flush := func() {
		if start >= 0 {
			w := b.String()
			toks = append(toks, Token{Word: w, Stem: refStem(w), Start: start, End: pos})
			b.Reset()
			start = -1
		}
	}
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			if start < 0 {
				start = pos
			}
			b.WriteRune(unicode.ToLower(r))
		} else {
			flush()
		}
		pos++
	}
	flush()
	return toks
}

func refStem(w string) string {
	n := utf8.RuneCountInString(w)
	if n <= 3 {
		return w
	}
	switch {
	case strings.HasSuffix(w, "ies") && n > 4:
		w = w[:len(w)-3] + "y"
	case strings.HasSuffix(w, "sses"):
		w = w[:len(w)-2]
	case strings.HasSuffix(w, "s") && !strings.HasSuffix(w, "ss") && !strings.HasSuffix(w, "us") && !strings.HasSuffix(w, "is"):
		w = w[:len(w)-1]
	}
	n = utf8.RuneCountInString(w)
	switch {
	case strings.HasSuffix(w, "ing") && n > 5:
		w = w[:len(w)-3]
	case strings.HasSuffix(w, "ed") && n > 4:
		w = w[:len(w)-2]
	}
	if strings.HasSuffix(w, "e") && utf8.RuneCountInString(w) > 4 {
		w = w[:len(w)-1]
	}
	return w
}

func refSentences(s string) []Sentence {
	runes := []rune(s)
	var out []Sentence
	begin := 0
	emit := func(end int) {
		a, b := begin, end
		for a < b && (unicode.IsSpace(runes[a]) || runes[a] == '-' || runes[a] == '*' || runes[a] == '•') {
			a++
		}
		for b > a && unicode.IsSpace(runes[b-1]) {
			b--
		}
		if b > a {
			t := string(runes[a:b])
			toks := refTokenize(t)
			for i := range toks {
				toks[i].Start += a
				toks[i].End += a
			}
			if len(toks) > 0 {
				out = append(out, Sentence{Text: t, Start: a, End: b, Tokens: toks})
			}
		}
		begin = end
	}
	for i, r := range runes {
		switch {
		case r == '\n' || r == ';':
			emit(i + 1)
		case (r == '.' || r == '!' || r == '?') && (i+1 == len(runes) || unicode.IsSpace(runes[i+1])):
			emit(i + 1)
		}
	}
	emit(len(runes))
	return out
}
