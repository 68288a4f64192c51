// Package text holds the small pieces of language processing that the local
// embedder and the heuristic grader share: tokens with their positions,
// sentences, a light stemmer and a stop-word list. It is deliberately simple
// and deterministic; it never downloads a model.
package text

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Token is a word of the input with its position in runes.
type Token struct {
	Word  string // lower-case surface form
	Stem  string // folded form used for matching
	Start int    // rune offset of the first rune
	End   int    // rune offset after the last rune
}

// Tokenize splits s into words: runs of letters and digits. Punctuation,
// including hyphens, separates words, so "retry-after" and "retry after"
// give the same tokens.
func Tokenize(s string) []Token {
	toks := make([]Token, 0, len(s)/5)
	// A word that is already lower-case ASCII is a substring of s; only
	// other words are copied, lower-cased.
	startByte, start, pos := 0, -1, 0
	plain := true
	flush := func(end int) {
		if start >= 0 {
			w := s[startByte:end]
			if !plain {
				w = lowerWord(w)
			}
			toks = append(toks, Token{Word: w, Stem: Stem(w), Start: start, End: pos})
			start = -1
		}
	}
	for i, r := range s {
		var isWord bool
		if r < utf8.RuneSelf {
			c := byte(r)
			isWord = 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || 'A' <= c && c <= 'Z'
		} else {
			isWord = unicode.IsLetter(r) || unicode.IsDigit(r)
		}
		if isWord {
			if start < 0 {
				start, startByte, plain = pos, i, true
			}
			if r >= utf8.RuneSelf || 'A' <= r && r <= 'Z' {
				plain = false
			}
		} else {
			flush(i)
		}
		pos++
	}
	flush(len(s))
	return toks
}

// lowerWord lower-cases a word rune by rune, as unicode.ToLower does.
func lowerWord(w string) string {
	b := make([]byte, 0, len(w)+4)
	for _, r := range w {
		b = utf8.AppendRune(b, unicode.ToLower(r))
	}
	return string(b)
}

// Stems returns the stems of the words of s, in order.
func Stems(s string) []string {
	toks := Tokenize(s)
	out := make([]string, len(toks))
	for i, t := range toks {
		out[i] = t.Stem
	}
	return out
}

// Stem folds plurals and common verb suffixes so that "caches", "caching" and
// "cached" all become "cach". It is not a full Porter stemmer: it only has to
// make the same word meet itself, and it must never merge unrelated words.
func Stem(w string) string {
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

// Sentence is a span of the input, in runes, with its tokens.
type Sentence struct {
	Text   string
	Start  int
	End    int
	Tokens []Token
}

// Sentences splits s at sentence ends (. ! ? followed by space), at line
// breaks, at list bullets and at semicolons, and returns the non-empty
// pieces trimmed, with rune offsets into s.
func Sentences(s string) []Sentence {
	if !utf8.ValidString(s) {
		return sentencesOfRunes(s)
	}
	// Valid UTF-8: each piece is a substring of s, found by walking bytes
	// and counting runes, with no copy of the text.
	var out []Sentence
	split(s, func(t string, _, ar, br int) bool {
		out = appendSentence(out, t, ar, br)
		return true
	})
	return out
}

// appendSentence appends the piece t, at rune offsets [start, end) of the
// text, with its tokens' offsets made offsets into the text; a piece
// without tokens is left out.
func appendSentence(out []Sentence, t string, start, end int) []Sentence {
	toks := Tokenize(t)
	if len(toks) == 0 {
		return out
	}
	for i := range toks {
		toks[i].Start += start
		toks[i].End += start
	}
	return append(out, Sentence{Text: t, Start: start, End: end, Tokens: toks})
}

// EachSentence calls f with the text and byte offset of each piece of
// valid UTF-8 s that Sentences would return, in order, until f returns
// false. It does not tokenise, so it also passes the pieces without words,
// which Sentences leaves out. For a check that looks at most sentences
// and keeps none, such as the injection check.
func EachSentence(s string, f func(text string, byteStart int) bool) {
	split(s, func(t string, a, _, _ int) bool { return f(t, a) })
}

// split walks valid UTF-8 s and calls emit with each non-empty trimmed
// piece, its byte offset and its rune offsets, until emit returns false.
func split(s string, emit func(t string, byteStart, runeStart, runeEnd int) bool) {
	beginByte, beginRune := 0, 0
	piece := func(endByte, endRune int) bool {
		a, ar := beginByte, beginRune
		beginByte, beginRune = endByte, endRune
		for a < endByte {
			r, size := utf8.DecodeRuneInString(s[a:endByte])
			if !unicode.IsSpace(r) && r != '-' && r != '*' && r != '•' {
				break
			}
			a += size
			ar++
		}
		b, br := endByte, endRune
		for b > a {
			r, size := utf8.DecodeLastRuneInString(s[a:b])
			if !unicode.IsSpace(r) {
				break
			}
			b -= size
			br--
		}
		return b <= a || emit(s[a:b], a, ar, br)
	}
	n := 0 // runes before i
	for i, r := range s {
		next := i + utf8.RuneLen(r)
		switch {
		case r == '\n' || r == ';':
			if !piece(next, n+1) {
				return
			}
		case r == '.' || r == '!' || r == '?':
			if next == len(s) {
				if !piece(next, n+1) {
					return
				}
			} else if r2, _ := utf8.DecodeRuneInString(s[next:]); unicode.IsSpace(r2) {
				if !piece(next, n+1) {
					return
				}
			}
		}
		n++
	}
	piece(len(s), n)
}

// sentencesOfRunes is Sentences for text that is not valid UTF-8: the
// invalid bytes become U+FFFD in the pieces' text.
func sentencesOfRunes(s string) []Sentence {
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
			out = appendSentence(out, string(runes[a:b]), a, b)
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

// IsStop reports whether the lower-case word w carries no topic on its own.
func IsStop(w string) bool { return stop[w] }

var stop = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`a about above after again against all also am an and any are as at be because
		been before being below between both but by can could did do does doing done down during each either else
		etc even ever every few for from further get gets got had has have having he her here hers him his how i if
		in into is it its itself just let like many may me might more most much must my no nor not now of off often
		on once one only or other our ours out over own per quite rather really same says see shall she should so
		some such than that the their theirs them then there these they this those through thus to too under until
		up upon us usually very via was we well were what when where whether which while who whom whose why will
		with within without would yes yet you your yours explain describe tell give know think thing things way
		ways use used using something kind sort lot lots basically actually`) {
		m[w] = true
	}
	return m
}()
