// Package grader holds the graders: Heuristic, offline and deterministic,
// and the LLM grader that calls an OpenAI-compatible endpoint.
package grader

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/rubric"
	"github.com/assay-dev/assay/internal/text"
)

// HeuristicModel names the heuristic grader's rules; bump it when they
// change, so stored evaluations say which rules graded them.
const HeuristicModel = "heuristic-v1"

// Tuning of the heuristic grader. The values were chosen on the strong,
// partial and wrong answers in testdata/answers and checked on the Mohler
// data set (docs/quality.md).
const (
	// A sentence explains something when it has at least minExplained words,
	// a share of function words typical of prose, and is not mostly terms.
	minExplained   = 6
	minStopShare   = 0.2
	maxTermShare   = 0.6
	shortAnswer    = 40 // words; shorter answers cannot show senior depth
	shortCap       = 2
	keywordListCap = 1
	maxEvidence    = 2
	maxFollowUps   = 3
	maxMissing     = 8
)

// Heuristic grades by key-point coverage: a key point is covered when one of
// its terms appears in a sentence that explains, partial when a term appears
// only in a fragment. Misconception signals lower the level of the
// criterion they concern.
type Heuristic struct{}

// Kind implements evaluation.Grader.
func (Heuristic) Kind() string { return "heuristic" }

type sentence struct {
	text.Sentence
	stems     []string
	explains  bool
	injection bool
}

type analysis struct {
	sentences   []sentence
	words       int
	keywordList bool
	injection   bool
}

func analyse(answer string) analysis {
	var a analysis
	proseWords := 0
	for _, s := range text.Sentences(answer) {
		st := sentence{Sentence: s, injection: IsInjection(s.Text)}
		stops := 0
		for _, t := range s.Tokens {
			st.stems = append(st.stems, t.Stem)
			if text.IsStop(t.Word) {
				stops++
			}
		}
		n := len(s.Tokens)
		st.explains = n >= minExplained && float64(stops) >= minStopShare*float64(n)
		if st.injection {
			a.injection = true
		} else {
			a.words += n
			if st.explains {
				proseWords += n
			}
		}
		a.sentences = append(a.sentences, st)
	}
	// Mostly fragments: a list of terms, not an explanation.
	a.keywordList = a.words > 0 && float64(proseWords) < 0.5*float64(a.words)
	return a
}

// Grade implements evaluation.Grader.
func (Heuristic) Grade(_ context.Context, in evaluation.GradeInput) (evaluation.Grading, error) {
	if rubric.IsInline(in.Rubric) {
		return gradeReference(in), nil // reference.go
	}
	a := analyse(in.Answer)
	r := in.Rubric
	g := evaluation.Grading{Model: HeuristicModel}
	ph := phrases{} // each term is stemmed once, not once per sentence
	termsMatched := 0
	hits := make([]map[int]int, len(r.Criteria)) // criterion -> sentence -> key points matched
	for ci, c := range r.Criteria {
		hits[ci] = map[int]int{}
		res := evaluation.CriterionResult{ID: c.ID}
		var score float64
		for _, kp := range c.KeyPoints {
			status := evaluation.Missing
			for si, s := range a.sentences {
				if s.injection || !ph.matchAny(kp.Terms, s.stems) {
					continue
				}
				hits[ci][si]++
				termsMatched++
				if s.explains && !termHeavy(ph, kp.Terms, s) {
					status = evaluation.Covered
				} else if status == evaluation.Missing {
					status = evaluation.Partial
				}
			}
			switch status {
			case evaluation.Covered:
				score++
			case evaluation.Partial:
				score += 0.5
			default:
				if len(g.MissingPoints) < maxMissing {
					g.MissingPoints = append(g.MissingPoints, kp.Point)
				}
			}
			res.KeyPoints = append(res.KeyPoints, evaluation.KeyPointResult{ID: kp.ID, Point: kp.Point, Status: status})
		}
		res.Level = levelOf(score / float64(len(c.KeyPoints)))
		res.Evidence = evidence(a, hits[ci])
		g.Criteria = append(g.Criteria, res)
	}
	g.Misconceptions = misconceptions(r, a, g.Criteria, ph)
	if a.injection {
		g.Flags = append(g.Flags, evaluation.FlagPromptInjection)
	}
	if a.keywordList && termsMatched > 0 {
		g.Flags = append(g.Flags, evaluation.FlagKeywordList)
		capLevels(g.Criteria, keywordListCap)
	}
	if a.words < shortAnswer {
		g.Flags = append(g.Flags, evaluation.FlagShortAnswer)
		capLevels(g.Criteria, shortCap)
	}
	for i := range g.Criteria {
		g.Criteria[i].Comment = comment(r.Criteria[i], g.Criteria[i])
	}
	g.FollowUps = followUps(r, g.Criteria)
	g.Feedback = feedback(r, g)
	return g, nil
}

// termHeavy reports whether most of a sentence's words are rubric terms: a
// list dressed up as a sentence.
func termHeavy(ph phrases, terms []string, s sentence) bool {
	n := 0
	for _, t := range terms {
		p := ph.of(t)
		if p.in(s.stems) {
			n += len(p)
		}
	}
	return float64(n) > maxTermShare*float64(len(s.stems))
}

// levelOf maps key-point coverage (0 to 1) to a level.
func levelOf(coverage float64) int {
	switch {
	case coverage <= 0:
		return 0
	case coverage < 0.3:
		return 1
	case coverage < 0.55:
		return 2
	case coverage < 0.8:
		return 3
	default:
		return 4
	}
}

func capLevels(cs []evaluation.CriterionResult, limit int) {
	for i := range cs {
		cs[i].Level = min(cs[i].Level, limit)
	}
}

// evidence quotes the sentences that matched the most key points.
func evidence(a analysis, hits map[int]int) []evaluation.Evidence {
	idx := make([]int, 0, len(hits))
	for si := range hits {
		idx = append(idx, si)
	}
	sort.Slice(idx, func(i, j int) bool {
		if hits[idx[i]] != hits[idx[j]] {
			return hits[idx[i]] > hits[idx[j]]
		}
		return idx[i] < idx[j]
	})
	if len(idx) > maxEvidence {
		idx = idx[:maxEvidence]
	}
	sort.Ints(idx)
	out := []evaluation.Evidence{}
	for _, si := range idx {
		s := a.sentences[si]
		out = append(out, evaluation.Evidence{Quote: s.Text, Start: s.Start, End: s.End})
	}
	return out
}

// misconceptions finds the rubric's misconceptions in the answer and lowers
// the level of the criterion each one concerns most.
func misconceptions(r rubric.Rubric, a analysis, crit []evaluation.CriterionResult, ph phrases) []evaluation.MisconceptionFound {
	var out []evaluation.MisconceptionFound
	var words []map[string]bool // the criteria's stems, made when first needed
	for _, m := range r.Misconceptions {
		for _, s := range a.sentences {
			if s.injection || !ph.matchAny(m.Signals, s.stems) {
				continue
			}
			ev := evaluation.Evidence{Quote: s.Text, Start: s.Start, End: s.End}
			out = append(out, evaluation.MisconceptionFound{ID: m.ID, Claim: m.Claim, Why: m.Why, Evidence: &ev})
			if words == nil {
				words = criterionWords(r)
			}
			ci := concernedCriterion(words, m)
			crit[ci].Level = max(0, crit[ci].Level-1)
			break
		}
	}
	return out
}

// concernedCriterion returns the index of the criterion whose words overlap
// most with the misconception's; words holds each criterion's stems.
func concernedCriterion(words []map[string]bool, m rubric.Misconception) int {
	mw := map[string]bool{}
	for _, s := range text.Stems(m.Claim + " " + m.Why + " " + strings.Join(m.Signals, " ")) {
		if !text.IsStop(s) {
			mw[s] = true
		}
	}
	best, bestN := 0, -1
	for i, cw := range words {
		n := 0
		for s := range cw {
			if mw[s] {
				n++
			}
		}
		if n > bestN {
			best, bestN = i, n
		}
	}
	return best
}

// criterionWords returns the distinct stems of each criterion's name,
// description, key points and terms.
func criterionWords(r rubric.Rubric) []map[string]bool {
	out := make([]map[string]bool, len(r.Criteria))
	for i, c := range r.Criteria {
		var b strings.Builder
		b.WriteString(c.Name + " " + c.Description)
		for _, kp := range c.KeyPoints {
			b.WriteString(" " + kp.Point + " " + strings.Join(kp.Terms, " "))
		}
		out[i] = map[string]bool{}
		for _, s := range text.Stems(b.String()) {
			out[i][s] = true
		}
	}
	return out
}

func comment(c rubric.Criterion, res evaluation.CriterionResult) string {
	var missing []string
	for _, kp := range res.KeyPoints {
		if kp.Status != evaluation.Covered {
			missing = append(missing, kp.Point)
		}
	}
	out := fmt.Sprintf("Level %d of %d: %s", res.Level, rubric.MaxLevel, c.Levels[res.Level])
	if len(missing) > 0 {
		out += " Not yet explained: " + strings.TrimSuffix(missing[0], ".") + "."
	}
	return out
}

// Fingerprint implements evaluation.Fingerprinter: the rules version.
func (Heuristic) Fingerprint() string { return HeuristicModel + "/" + ReferenceModel }
