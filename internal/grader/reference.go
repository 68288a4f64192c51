package grader

import (
	"math"
	"unicode/utf8"

	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/rubric"
	"github.com/assay-dev/assay/internal/text"
)

// ReferenceModel names the heuristic grader's rules for inline rubrics
// (rubric.FromReference); bump it when they change.
const ReferenceModel = "heuristic-reference-v1"

// Tuning of reference grading. docs/quality.md says which were tuned on
// the Mohler data set and what they buy.
const (
	// fuzzyMin is the lowest character-trigram similarity (Dice) at which
	// an answer word counts as a spelling or morphological variant of a
	// term ("behaviour" and "behavior", "simulates" and "simulation"); it
	// then earns that similarity as partial credit.
	fuzzyMin = 0.6
	// coveredAt and partialAt classify a key point by its coverage.
	coveredAt = 0.75
	partialAt = 0.25
)

// gradeReference grades an answer to an inline rubric by how much of the
// reference answer's content it conveys. Every term earns credit 1 when
// its stem is in the answer, partial credit for a close spelling, else 0.
// A derived key point's coverage is the mean credit of its terms (a
// written key point's, the best one: any of its terms shows it); a
// criterion's coverage is the mean over its terms, and its level is
// round(4·√coverage). The square root gives partial answers more than
// proportional credit, as human graders do: saying half of the reference
// is worth more than half the marks.
//
// There are no caps for short answers or term lists: reference answers are
// often one line, and so are correct answers to them.
func gradeReference(in evaluation.GradeInput) evaluation.Grading {
	a := analyse(in.Answer)
	r := in.Rubric
	g := evaluation.Grading{Model: ReferenceModel}
	m := newMatcher(a)
	for _, c := range r.Criteria {
		res := evaluation.CriterionResult{ID: c.ID}
		hits := map[int]int{}
		var sum, total float64
		for _, kp := range c.KeyPoints {
			cov, n := m.keyPoint(kp, hits)
			sum += cov * n
			total += n
			status := evaluation.Missing
			switch {
			case cov >= coveredAt:
				status = evaluation.Covered
			case cov >= partialAt:
				status = evaluation.Partial
			}
			if status == evaluation.Missing && len(g.MissingPoints) < maxMissing {
				g.MissingPoints = append(g.MissingPoints, kp.Point)
			}
			res.KeyPoints = append(res.KeyPoints, evaluation.KeyPointResult{ID: kp.ID, Point: kp.Point, Status: status})
		}
		var coverage float64
		if total > 0 {
			coverage = sum / total
		}
		res.Level = referenceLevel(coverage)
		res.Evidence = evidence(a, hits)
		g.Criteria = append(g.Criteria, res)
	}
	if a.injection {
		g.Flags = append(g.Flags, evaluation.FlagPromptInjection)
	}
	for i := range g.Criteria {
		g.Criteria[i].Comment = comment(r.Criteria[i], g.Criteria[i])
	}
	g.FollowUps = followUps(r, g.Criteria)
	g.Feedback = feedback(r, g)
	return g
}

// referenceLevel maps coverage (0 to 1) to a level: round(4·√coverage).
func referenceLevel(coverage float64) int {
	if coverage <= 0 {
		return 0
	}
	return min(rubric.MaxLevel, int(math.Round(rubric.MaxLevel*math.Sqrt(min(coverage, 1)))))
}

// matcher finds terms in an answer: by stem, else by close spelling.
type matcher struct {
	stems map[string]int // stem -> first sentence that has it
	words []answerWord
	memo  map[string]wordMatch
}

type answerWord struct {
	grams    map[string]bool
	sentence int
}

type wordMatch struct {
	credit   float64
	sentence int
}

func newMatcher(a analysis) *matcher {
	m := &matcher{stems: map[string]int{}, memo: map[string]wordMatch{}}
	seen := map[string]bool{}
	for si, s := range a.sentences {
		if s.injection {
			continue
		}
		for _, t := range s.Tokens {
			if text.IsStop(t.Word) {
				continue
			}
			if _, ok := m.stems[t.Stem]; !ok {
				m.stems[t.Stem] = si
			}
			if !seen[t.Word] && utf8.RuneCountInString(t.Word) >= 3 {
				seen[t.Word] = true
				m.words = append(m.words, answerWord{grams: trigrams(t.Word), sentence: si})
			}
		}
	}
	return m
}

// keyPoint returns the coverage of a key point and the weight it carries in
// its criterion (its number of terms when derived, else 1), and counts the
// sentences that matched in hits.
func (m *matcher) keyPoint(kp rubric.KeyPoint, hits map[int]int) (coverage, weight float64) {
	derived := rubric.IsDerived(kp)
	var sum float64
	n := 0
	for _, term := range kp.Terms {
		credit, sentences := m.term(term)
		if sentences == nil {
			continue // no words: nothing to find
		}
		n++
		for _, si := range sentences {
			hits[si]++
		}
		if derived {
			sum += credit
		} else {
			sum = max(sum, credit)
		}
	}
	if n == 0 {
		return 0, 0
	}
	if derived {
		return sum / float64(n), float64(n)
	}
	return sum, 1
}

// term returns the credit of a term, the mean over its content words, and
// the sentences where they were found (non-nil when the term has words).
func (m *matcher) term(term string) (float64, []int) {
	toks := text.Tokenize(term)
	sentences := []int{}
	var sum float64
	n := 0
	for _, t := range toks {
		if text.IsStop(t.Word) && len(toks) > 1 {
			continue
		}
		n++
		wm := m.word(t)
		sum += wm.credit
		if wm.credit > 0 {
			sentences = append(sentences, wm.sentence)
		}
	}
	if n == 0 {
		return 0, nil
	}
	return sum / float64(n), sentences
}

func (m *matcher) word(t text.Token) wordMatch {
	if si, ok := m.stems[t.Stem]; ok {
		return wordMatch{credit: 1, sentence: si}
	}
	if wm, ok := m.memo[t.Word]; ok {
		return wm
	}
	best := wordMatch{}
	if utf8.RuneCountInString(t.Word) >= 3 {
		g := trigrams(t.Word)
		for _, w := range m.words {
			if d := dice(g, w.grams); d > best.credit {
				best = wordMatch{credit: d, sentence: w.sentence}
			}
		}
	}
	if best.credit < fuzzyMin {
		best = wordMatch{}
	}
	m.memo[t.Word] = best
	return best
}

// trigrams returns the character trigrams of a word marked at both ends.
func trigrams(w string) map[string]bool {
	r := []rune("^" + w + "$")
	out := make(map[string]bool, len(r))
	for i := 0; i+3 <= len(r); i++ {
		out[string(r[i:i+3])] = true
	}
	return out
}

// dice is the Dice coefficient of two sets of trigrams.
func dice(a, b map[string]bool) float64 {
	if len(a) == 0 || len(b) == 0 {
		return 0
	}
	if len(a) > len(b) {
		a, b = b, a
	}
	n := 0
	for g := range a {
		if b[g] {
			n++
		}
	}
	return 2 * float64(n) / float64(len(a)+len(b))
}
