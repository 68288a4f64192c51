package grader

import (
	"bytes"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/text"
)

// injection matches text that talks to the grader instead of answering the
// question. Such sentences are removed before grading, so they earn
// nothing, and the evaluation is flagged. The patterns aim at the phrasing
// of instructions ("ignore previous instructions", "give this answer full
// marks"), which a genuine answer about backends has no reason to use.
var injection = regexp.MustCompile(`(?i)` +
	`\b(ignore|disregard|forget|override)\b.{0,30}\b(previous|prior|above|earlier|preceding|all|your|the)\b.{0,20}\b(instructions?|prompts?|rules|directions|rubric|guidelines)\b` +
	`|\b(give|award|assign|grade|score|rate|mark)\b.{0,40}\b(full|maximum|max|perfect|top|highest)\b.{0,12}\b(marks?|scores?|points?|credit|grade|level)` +
	`|\b(full|maximum|perfect|top)\s+(marks|score|points|credit)\b` +
	`|\b(100|10)\s*(/|out of)\s*(100|10)\b|\blevel\s*4\b.{0,20}\b(all|every|each)\b` +
	`|\b(you are|act as|pretend to be|you're)\b.{0,12}\b(grader|evaluator|examiner|assistant|language model|llm|ai model)\b` +
	`|\b(as an?|dear|attention|note to( the)?)\s+(ai|llm|language model|grader|evaluator|examiner|assistant)\b` +
	`|\b(system|developer)\s+(prompt|message|instructions?)\b` +
	`|\b(new|updated|real)\s+instructions?\b` +
	`|</?\s*(system|assistant|user|answer|instructions?|rubric)\s*>` +
	`|\bdo not (penalize|penalise|deduct|mark down|grade)\b` +
	`|\bthis (answer|response) (is|deserves|should (get|receive|be graded))\b.{0,20}\b(perfect|correct|excellent|full|top|100|maximum)\b`)

// IsInjection reports whether a sentence addresses the grader.
//
// The regular expression is slow (its bounded repetitions make a large
// automaton) and most sentences cannot match it, so a cheap test runs
// first: every alternative of the expression needs certain words, and a
// sentence without the words of any alternative is not matched.
func IsInjection(sentence string) bool {
	return mayBeInjection(sentence) && injection.MatchString(sentence)
}

// injectionNeeds lists, for each alternative of injection, groups of
// lower-case words: a text the alternative matches contains at least one
// word of every group. A word written "^w" must start at a word boundary
// (\b: the expression's \b, or a space it requires, precedes it), "w$"
// must end at one, "^w$" both. It must stay in step with the expression;
// TestInjectionPrefilter checks that it never rejects a match.
var injectionNeeds = needs([][][]string{
	{{"^ignore$", "^disregard$", "^forget$", "^override$"}, {"^instruction", "^prompt", "^rules$", "^directions$", "^rubric$", "^guidelines$"}},
	{{"^give$", "^award$", "^assign$", "^grade$", "^score$", "^rate$", "^mark$"}, {"^full$", "^maximum$", "^max$", "^perfect$", "^top$", "^highest$"}, {"^mark", "^score", "^point", "^credit", "^grade", "^level"}},
	{{"^full$", "^maximum$", "^perfect$", "^top$"}, {"^marks$", "^score$", "^points$", "^credit$"}},
	{{"^10"}, {"/", "out of"}},
	{{"^level"}, {"^all$", "^every$", "^each$"}},
	{{"^you are$", "^act as$", "^pretend to be$", "^you're$"}, {"^grader$", "^evaluator$", "^examiner$", "^assistant$", "^language model$", "^llm$", "^ai model$"}},
	{{"^as a", "^dear$", "^attention$", "^note to$"}, {"^ai$", "^llm$", "^language model$", "^grader$", "^evaluator$", "^examiner$", "^assistant$"}},
	{{"^system$", "^developer$"}, {"^prompt", "^message", "^instruction"}},
	{{"^new$", "^updated$", "^real$"}, {"^instruction"}},
	{{"<"}, {"^system", "^assistant", "^user", "^answer", "^instruction", "^rubric"}, {">"}},
	{{"^do not "}, {"^penalize$", "^penalise$", "^deduct$", "^mark down$", "^grade$"}},
	{{"^this answer ", "^this response "}, {"^perfect$", "^correct$", "^excellent$", "^full$", "^top$", "^100$", "^maximum$"}},
})

// needle is a word of injectionNeeds.
type needle struct {
	s          []byte
	start, end bool // must start, end at a word boundary
}

func needs(alts [][][]string) [][][]needle {
	out := make([][][]needle, len(alts))
	for i, alt := range alts {
		for _, g := range alt {
			var ng []needle
			for _, w := range g {
				n := needle{start: strings.HasPrefix(w, "^"), end: strings.HasSuffix(w, "$")}
				n.s = []byte(strings.TrimSuffix(strings.TrimPrefix(w, "^"), "$"))
				ng = append(ng, n)
			}
			out[i] = append(out[i], ng)
		}
	}
	return out
}

// mayBeInjection reports whether some alternative of injection could match
// s. Case-insensitive matching folds a few non-ASCII letters onto ASCII
// ones (the Kelvin sign onto k, the long s onto s), so text that is not all
// ASCII always goes to the expression.
func mayBeInjection(s string) bool {
	var buf [512]byte
	lower, ascii := lowerASCII(buf[:0], s)
	if !ascii {
		return true
	}
	for _, alt := range injectionNeeds {
		if hasAll(lower, alt) {
			return true
		}
	}
	return false
}

// injectionFlags flags an answer one of whose sentences IsInjection
// matches. The prefilter's work is done once for the whole answer: it is
// lower-cased once, and the alternatives whose words it lacks are ruled
// out for all of its sentences (each is a substring of it, so they lack
// them too); most answers stop there. A sentence left is checked against
// the alternatives left, on its slice of the lower-cased answer, and only
// then by the expression. Text that is not all ASCII takes IsInjection
// sentence by sentence (see mayBeInjection).
func injectionFlags(answer string) []string {
	flag := []string{evaluation.FlagPromptInjection}
	if !utf8.ValidString(answer) {
		for _, s := range text.Sentences(answer) {
			if IsInjection(s.Text) {
				return flag
			}
		}
		return nil
	}
	lower, ascii := lowerASCII(make([]byte, 0, len(answer)), answer)
	var alts [][][]needle
	if ascii {
		for _, alt := range injectionNeeds {
			if hasAll(lower, alt) {
				alts = append(alts, alt)
			}
		}
		if len(alts) == 0 {
			return nil
		}
	}
	flagged := false
	text.EachSentence(answer, func(s string, at int) bool {
		if !ascii {
			flagged = IsInjection(s)
			return !flagged
		}
		sentence := lower[at : at+len(s)]
		if slices.ContainsFunc(alts, func(alt [][]needle) bool { return hasAll(sentence, alt) }) {
			flagged = injection.MatchString(s)
		}
		return !flagged
	})
	if flagged {
		return flag
	}
	return nil
}

// lowerASCII appends s in lower case to dst, or reports false at the first
// byte that is not ASCII.
func lowerASCII(dst []byte, s string) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 {
			return dst, false
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst, true
}

func hasAll(lower []byte, groups [][]needle) bool {
	for _, g := range groups {
		found := false
		for _, n := range g {
			if n.in(lower) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// in reports whether the needle occurs in text with its boundaries.
func (n needle) in(text []byte) bool {
	for off := 0; ; {
		i := bytes.Index(text[off:], n.s)
		if i < 0 {
			return false
		}
		i += off
		j := i + len(n.s)
		if (!n.start || i == 0 || !isWordByte(text[i-1])) && (!n.end || j == len(text) || !isWordByte(text[j])) {
			return true
		}
		off = i + 1
	}
}

// isWordByte reports whether c is in \w, which \b looks at: ASCII letters,
// digits and the underscore.
func isWordByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_'
}

// phrase is a term or signal as a sequence of stems.
type phrase []string

func newPhrase(s string) phrase { return phrase(text.Stems(s)) }

// phrases memoises newPhrase within one grading, where every term is
// matched against every sentence.
type phrases map[string]phrase

func (ps phrases) of(t string) phrase {
	p, ok := ps[t]
	if !ok {
		p = newPhrase(t)
		ps[t] = p
	}
	return p
}

// matchAny reports whether one of terms occurs in stems.
func (ps phrases) matchAny(terms []string, stems []string) bool {
	for _, t := range terms {
		if ps.of(t).in(stems) {
			return true
		}
	}
	return false
}

// in reports whether p occurs contiguously in stems.
func (p phrase) in(stems []string) bool {
	if len(p) == 0 || len(p) > len(stems) {
		return false
	}
outer:
	for i := 0; i+len(p) <= len(stems); i++ {
		for j := range p {
			if stems[i+j] != p[j] {
				continue outer
			}
		}
		return true
	}
	return false
}
