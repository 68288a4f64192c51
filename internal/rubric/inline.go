package rubric

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/assay-dev/assay/internal/fault"
	"github.com/assay-dev/assay/internal/text"
)

// Inline rubrics are built per request by FromReference; they never enter
// the bank.
const (
	// InlineIDPrefix starts the id of every inline rubric; a short hash of
	// the rubric's content follows.
	InlineIDPrefix = "inline-"
	// InlineTag is the tag every inline rubric carries. With the id prefix it
	// tells the heuristic grader to grade by reference coverage.
	InlineTag = "inline"
	// DerivedPrefix starts the id of a key point derived from the reference
	// answer. Such a key point is covered by saying all its terms (they are
	// the content words of one clause), where a written key point is covered
	// by any one of its terms. Key points sent by callers may not use it.
	DerivedPrefix = "ref-"
	// MaxInlineQuestion and MaxInlineReference bound the inline texts, in
	// characters.
	MaxInlineQuestion  = 2000
	MaxInlineReference = 5000
	// inlineTitleRunes is the longest title taken from the question.
	inlineTitleRunes = 80
)

// IsInline reports whether r was built by FromReference.
func IsInline(r Rubric) bool {
	if !strings.HasPrefix(r.ID, InlineIDPrefix) {
		return false
	}
	for _, t := range r.Tags {
		if t == InlineTag {
			return true
		}
	}
	return false
}

// IsDerived reports whether a key point was derived from the reference
// answer, so that all of its terms, not any one, make the point.
func IsDerived(kp KeyPoint) bool { return strings.HasPrefix(kp.ID, DerivedPrefix) }

// derivedLevels describe the levels of a derived criterion: how much of the
// reference's content the answer conveys.
var derivedLevels = []string{
	"Conveys none of this part of the reference answer.",
	"Touches on this part of the reference answer with a word or two.",
	"Conveys some of this part of the reference answer.",
	"Conveys most of this part of the reference answer.",
	"Conveys all of this part of the reference answer.",
}

// FromReference builds a rubric for a question that is not in the bank,
// from its reference answer and, optionally, criteria. Its id is derived
// from its content, so the same inline rubric always has the same id.
//
// Without criteria, the reference answer is cut into clauses (at sentence
// ends, commas, colons, brackets and conjunctions such as "and", "or",
// "whereas"); each clause becomes a key point whose terms are its content
// words, and each sentence a criterion weighted by its number of terms.
// Words of the question are left out of the terms ("question demoting"):
// repeating the question shows no understanding. A clause left without
// terms restates the question and is dropped.
//
// Criteria sent by the caller are checked (ids unique slugs, a name, a
// weight above 0, five level descriptors, well-formed key points). A
// criterion sent without key points gets the derived key points of the
// clauses that share words with it, or of every clause when none does.
//
// Errors are fault.Invalid, with pointers under /rubric.
func FromReference(question, reference string, criteria []Criterion) (Rubric, error) {
	question, reference = strings.TrimSpace(question), strings.TrimSpace(reference)
	var fields []fault.FieldError
	bad := func(ptr, format string, args ...any) {
		fields = append(fields, fault.FieldError{Pointer: ptr, Detail: fmt.Sprintf(format, args...)})
	}
	switch {
	case question == "":
		bad("/rubric/question", "must not be empty")
	case !utf8.ValidString(question):
		bad("/rubric/question", "must be valid UTF-8")
	case utf8.RuneCountInString(question) > MaxInlineQuestion:
		bad("/rubric/question", "must be at most %d characters", MaxInlineQuestion)
	}
	switch {
	case reference == "":
		bad("/rubric/reference_answer", "must not be empty")
	case !utf8.ValidString(reference):
		bad("/rubric/reference_answer", "must be valid UTF-8")
	case utf8.RuneCountInString(reference) > MaxInlineReference:
		bad("/rubric/reference_answer", "must be at most %d characters", MaxInlineReference)
	}
	checkInlineCriteria(criteria, bad)
	if len(fields) > 0 {
		return Rubric{}, invalid(fields)
	}
	clauses := deriveClauses(question, reference)
	if len(clauses) == 0 && needsDerived(criteria) {
		return Rubric{}, fault.Field("/rubric/reference_answer", "has no content words to grade against")
	}
	r := Rubric{
		Version:         1,
		Title:           titleOf(question),
		Question:        question,
		Aliases:         []string{},
		Tags:            []string{InlineTag},
		Level:           "mid",
		ReferenceAnswer: reference,
		Misconceptions:  []Misconception{},
		FollowUps:       []FollowUp{},
	}
	if len(criteria) == 0 {
		r.Criteria = deriveCriteria(clauses)
	} else {
		r.Criteria = completeCriteria(criteria, clauses)
	}
	r.ID = InlineIDPrefix + r.ContentHash()[:12]
	return r, nil
}

func invalid(fields []fault.FieldError) error {
	return &fault.Error{Kind: fault.Invalid, Message: strings.TrimPrefix(fields[0].Pointer, "/") + " " + fields[0].Detail, Fields: fields}
}

func needsDerived(criteria []Criterion) bool {
	if len(criteria) == 0 {
		return true
	}
	for _, c := range criteria {
		if len(c.KeyPoints) == 0 {
			return true
		}
	}
	return false
}

// checkInlineCriteria applies the rules of criteria sent with a request:
// the bank's rules, less the minimum counts (an inline rubric may have one
// criterion, and key points are optional).
func checkInlineCriteria(cs []Criterion, bad func(string, string, ...any)) {
	if len(cs) > MaxCriteria {
		bad("/rubric/criteria", "must have at most %d criteria, has %d", MaxCriteria, len(cs))
	}
	ids := map[string]bool{}
	for i, c := range cs {
		p := fmt.Sprintf("/rubric/criteria/%d", i)
		switch {
		case !slug.MatchString(c.ID):
			bad(p+"/id", "must be a slug (lower-case letters, digits and single hyphens), got %q", c.ID)
		case ids[c.ID]:
			bad(p+"/id", "%q is used twice", c.ID)
		}
		ids[c.ID] = true
		if strings.TrimSpace(c.Name) == "" {
			bad(p+"/name", "is required")
		}
		if !(c.Weight > 0 && c.Weight <= MaxWeight) {
			bad(p+"/weight", "must be greater than 0 and at most %d", MaxWeight)
		}
		if len(c.Levels) != Levels {
			bad(p+"/levels", "must have exactly %d descriptors (levels 0 to %d), has %d", Levels, MaxLevel, len(c.Levels))
		}
		for j, l := range c.Levels {
			if strings.TrimSpace(l) == "" {
				bad(fmt.Sprintf("%s/levels/%d", p, j), "must not be empty")
			}
		}
		if len(c.KeyPoints) > MaxKeyPoints {
			bad(p+"/key_points", "must have at most %d key points, has %d", MaxKeyPoints, len(c.KeyPoints))
		}
		kpIDs := map[string]bool{}
		for j, kp := range c.KeyPoints {
			k := fmt.Sprintf("%s/key_points/%d", p, j)
			switch {
			case !slug.MatchString(kp.ID):
				bad(k+"/id", "must be a slug, got %q", kp.ID)
			case strings.HasPrefix(kp.ID, DerivedPrefix):
				bad(k+"/id", "must not start with %q, which marks key points derived from the reference answer", DerivedPrefix)
			case kpIDs[kp.ID]:
				bad(k+"/id", "%q is used twice", kp.ID)
			}
			kpIDs[kp.ID] = true
			if strings.TrimSpace(kp.Point) == "" {
				bad(k+"/point", "is required")
			}
			if n := len(kp.Terms); n < 1 || n > MaxTerms {
				bad(k+"/terms", "must have 1 to %d terms, has %d", MaxTerms, n)
			}
			for t, term := range kp.Terms {
				if strings.TrimSpace(term) == "" || term != strings.ToLower(term) || len(text.Tokenize(term)) == 0 {
					bad(fmt.Sprintf("%s/terms/%d", k, t), "must be a lower-case word or phrase, got %q", term)
				}
			}
		}
	}
}

// completeCriteria copies the caller's criteria and gives the ones without
// key points derived ones.
func completeCriteria(cs []Criterion, clauses []clause) []Criterion {
	out := make([]Criterion, len(cs))
	for i, c := range cs {
		c.Name = strings.TrimSpace(c.Name)
		if strings.TrimSpace(c.Description) == "" {
			c.Description = c.Name
		}
		c.Levels = append([]string(nil), c.Levels...)
		if len(c.KeyPoints) > 0 {
			kps := make([]KeyPoint, len(c.KeyPoints))
			for j, kp := range c.KeyPoints {
				kp.Terms = append([]string(nil), kp.Terms...)
				kps[j] = kp
			}
			c.KeyPoints = kps
		} else {
			c.KeyPoints = keyPoints(relevantClauses(c, clauses))
		}
		out[i] = c
	}
	return out
}

// relevantClauses returns the clauses that share a term with the criterion's
// text, or all of them when none does.
func relevantClauses(c Criterion, clauses []clause) []clause {
	words := map[string]bool{}
	for _, s := range text.Stems(c.Name + " " + c.Description + " " + strings.Join(c.Levels, " ")) {
		if !text.IsStop(s) {
			words[s] = true
		}
	}
	var out []clause
	for _, cl := range clauses {
		for _, t := range cl.terms {
			if words[text.Stem(t)] {
				out = append(out, cl)
				break
			}
		}
	}
	if len(out) == 0 {
		return clauses
	}
	if len(out) > MaxKeyPoints {
		out = mergeClauses(out, MaxKeyPoints)
	}
	return out
}

// clause is one idea of the reference answer: its text, the sentence it
// belongs to, and its content words.
type clause struct {
	text     string
	sentence int
	terms    []string
}

// Conjunctions that start a new clause wherever they stand. Other linking
// words start one only after a comma (which is a break of its own); at
// the start of a clause both kinds are left out of its text.
var (
	clauseStarts = map[string]bool{"and": true, "or": true, "but": true, "whereas": true}
	linkWords    = map[string]bool{"and": true, "or": true, "but": true, "whereas": true, "while": true,
		"then": true, "so": true, "which": true, "because": true, "although": true, "however": true, "thus": true}
)

// deriveClauses cuts the reference answer into clauses with their terms:
// the content words (not stop words, at least two characters) that are not
// in the question, each stem once in the whole rubric. When question
// demoting leaves nothing, the question's words count after all: the
// reference then only restates the question, and its words are all there
// is to grade against.
func deriveClauses(question, reference string) []clause {
	inQuestion := map[string]bool{}
	for _, t := range text.Tokenize(question) {
		inQuestion[t.Stem] = true
	}
	out := splitClauses(reference, inQuestion)
	if len(out) == 0 {
		out = splitClauses(reference, nil)
	}
	return out
}

func splitClauses(reference string, demote map[string]bool) []clause {
	runes := []rune(reference)
	seen := map[string]bool{}
	var out []clause
	for si, s := range text.Sentences(reference) {
		var cur []text.Token
		flush := func() {
			if len(cur) == 0 {
				return
			}
			cl := clause{text: clauseText(runes, cur[0].Start, cur[len(cur)-1].End), sentence: si}
			for _, t := range cur {
				if isContent(t) && !demote[t.Stem] && !seen[t.Stem] {
					seen[t.Stem] = true
					cl.terms = append(cl.terms, t.Word)
				}
			}
			cur = nil
			if len(cl.terms) == 0 {
				return
			}
			// A clause with more terms than a key point may have is cut
			// into even chunks.
			n := (len(cl.terms) + MaxTerms - 1) / MaxTerms
			size := (len(cl.terms) + n - 1) / n
			for i := 0; i < len(cl.terms); i += size {
				part := cl
				part.terms = cl.terms[i:min(i+size, len(cl.terms))]
				out = append(out, part)
			}
		}
		for i, t := range s.Tokens {
			if i > 0 && (breaksBetween(runes[s.Tokens[i-1].End:t.Start]) || clauseStarts[t.Word]) {
				flush()
			}
			if linkWords[t.Word] && len(cur) == 0 {
				continue // the conjunction itself is not part of the point
			}
			cur = append(cur, t)
		}
		flush()
	}
	return out
}

// isContent reports whether a token carries content: not a stop word, and
// at least two characters ("c" of "c++" says nothing).
func isContent(t text.Token) bool {
	return !text.IsStop(t.Word) && utf8.RuneCountInString(t.Word) >= 2
}

// breaksBetween reports whether the text between two words ends a clause.
func breaksBetween(gap []rune) bool {
	for _, r := range gap {
		switch r {
		case ',', ':', '(', ')', '[', ']', ';':
			return true
		}
	}
	return false
}

// clauseText is the clause as written, from its first to its last word,
// with a bracket closed if the clause opened one.
func clauseText(runes []rune, start, end int) string {
	s := string(runes[start:end])
	if strings.Count(s, "(") > strings.Count(s, ")") && end < len(runes) && runes[end] == ')' {
		s += ")"
	}
	return s
}

// deriveCriteria makes one criterion per sentence of the reference answer
// (at most MaxCriteria, merging neighbours), each weighted by its number of
// terms so that every content word of the reference counts the same.
func deriveCriteria(clauses []clause) []Criterion {
	var groups [][]clause
	for i, cl := range clauses {
		if i == 0 || cl.sentence != clauses[i-1].sentence {
			groups = append(groups, nil)
		}
		groups[len(groups)-1] = append(groups[len(groups)-1], cl)
	}
	groups = mergeGroups(groups, MaxCriteria)
	out := make([]Criterion, 0, len(groups))
	next := 1
	for gi, g := range groups {
		if len(g) > MaxKeyPoints {
			g = mergeClauses(g, MaxKeyPoints)
		}
		kps := make([]KeyPoint, len(g))
		terms := 0
		texts := make([]string, len(g))
		for i, cl := range g {
			kps[i] = KeyPoint{ID: fmt.Sprintf("%s%d", DerivedPrefix, next), Point: sentenceCase(cl.text), Terms: cl.terms}
			next++
			terms += len(cl.terms)
			texts[i] = cl.text
		}
		name := "Reference answer"
		if len(groups) > 1 {
			name = fmt.Sprintf("Reference answer, part %d", gi+1)
		}
		out = append(out, Criterion{
			ID:          fmt.Sprintf("part-%d", gi+1),
			Name:        name,
			Weight:      float64(terms),
			Description: "Conveys: " + strings.Join(texts, "; ") + ".",
			Levels:      append([]string(nil), derivedLevels...),
			KeyPoints:   kps,
		})
	}
	return out
}

// mergeGroups joins neighbouring groups until at most max remain, always
// the adjacent pair with the fewest clauses together.
func mergeGroups(groups [][]clause, max int) [][]clause {
	for len(groups) > max {
		best, bestN := 0, -1
		for i := 0; i+1 < len(groups); i++ {
			if n := len(groups[i]) + len(groups[i+1]); bestN < 0 || n < bestN {
				best, bestN = i, n
			}
		}
		merged := append(append([]clause(nil), groups[best]...), groups[best+1]...)
		groups = append(groups[:best], append([][]clause{merged}, groups[best+2:]...)...)
	}
	return groups
}

// mergeClauses joins neighbouring clauses until at most max remain, always
// the adjacent pair with the fewest terms together. A merged clause may then
// have more than MaxTerms terms; only very long reference answers get there.
func mergeClauses(cs []clause, max int) []clause {
	cs = append([]clause(nil), cs...)
	for len(cs) > max {
		best, bestN := 0, -1
		for i := 0; i+1 < len(cs); i++ {
			if n := len(cs[i].terms) + len(cs[i+1].terms); bestN < 0 || n < bestN {
				best, bestN = i, n
			}
		}
		a, b := cs[best], cs[best+1]
		m := clause{text: a.text + ", " + b.text, sentence: a.sentence, terms: append(append([]string(nil), a.terms...), b.terms...)}
		cs = append(cs[:best], append([]clause{m}, cs[best+2:]...)...)
	}
	return cs
}

// keyPoints turns clauses into derived key points.
func keyPoints(cs []clause) []KeyPoint {
	out := make([]KeyPoint, len(cs))
	for i, cl := range cs {
		out[i] = KeyPoint{ID: fmt.Sprintf("%s%d", DerivedPrefix, i+1), Point: sentenceCase(cl.text), Terms: append([]string(nil), cl.terms...)}
	}
	return out
}

func sentenceCase(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 {
		return s
	}
	return string(unicode.ToUpper(r)) + s[n:]
}

// titleOf makes a title from the question: one line, without the question
// mark, cut at a word boundary.
func titleOf(q string) string {
	q = strings.Join(strings.Fields(q), " ")
	q = strings.TrimRight(q, "?.!: ")
	if q == "" {
		return "Inline rubric"
	}
	runes := []rune(q)
	if len(runes) <= inlineTitleRunes {
		return q
	}
	cut := inlineTitleRunes
	for i := inlineTitleRunes; i > inlineTitleRunes/2; i-- {
		if runes[i] == ' ' {
			cut = i
			break
		}
	}
	return strings.TrimRight(string(runes[:cut]), " ,;:") + "…"
}
