package grader

import (
	"fmt"
	"sort"
	"strings"
	"unicode"

	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/rubric"
)

// followUps picks questions from the rubric's bank for the weakest
// criteria (lowest level, heaviest weight first), at a depth that suits the
// level reached: a clarifying question for a gap, an expert one for a
// criterion already answered well.
func followUps(r rubric.Rubric, crit []evaluation.CriterionResult) []evaluation.FollowUp {
	order := make([]int, len(crit))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool {
		a, b := crit[order[i]], crit[order[j]]
		if a.Level != b.Level {
			return a.Level < b.Level
		}
		return r.Criteria[order[i]].Weight > r.Criteria[order[j]].Weight
	})
	out := []evaluation.FollowUp{}
	for _, ci := range order {
		if len(out) == maxFollowUps {
			break
		}
		c, res := r.Criteria[ci], crit[ci]
		fu, ok := pickFollowUp(r, c.ID, depthFor(res.Level))
		if !ok {
			continue
		}
		out = append(out, evaluation.FollowUp{Question: fu.Question, Criterion: c.ID, Depth: fu.Depth, Why: why(c, res)})
	}
	return out
}

func depthFor(level int) int {
	switch {
	case level <= 1:
		return 1
	case level == 2:
		return 2
	default:
		return 3
	}
}

// pickFollowUp returns the criterion's follow-up whose depth is closest to
// want, preferring the shallower one on a tie.
func pickFollowUp(r rubric.Rubric, criterion string, want int) (rubric.FollowUp, bool) {
	var best rubric.FollowUp
	bestDist := -1
	for _, fu := range r.FollowUps {
		if fu.Criterion != criterion {
			continue
		}
		// Rank by distance; on a tie the shallower question wins, since a
		// candidate who missed the deeper one is unlikely to answer it.
		d := 2 * (fu.Depth - want)
		if d < 0 {
			d = -d
		} else if d > 0 {
			d++
		}
		if bestDist < 0 || d < bestDist {
			best, bestDist = fu, d
		}
	}
	return best, bestDist >= 0
}

func why(c rubric.Criterion, res evaluation.CriterionResult) string {
	for _, kp := range res.KeyPoints {
		if kp.Status == evaluation.Missing {
			return fmt.Sprintf("%s reached level %d of %d; the answer did not cover: %s", c.Name, res.Level, rubric.MaxLevel, lowerFirst(kp.Point))
		}
	}
	for _, kp := range res.KeyPoints {
		if kp.Status == evaluation.Partial {
			return fmt.Sprintf("%s reached level %d of %d; the answer named but did not explain: %s", c.Name, res.Level, rubric.MaxLevel, lowerFirst(kp.Point))
		}
	}
	return fmt.Sprintf("%s reached level %d of %d; this probes for senior depth", c.Name, res.Level, rubric.MaxLevel)
}

func feedback(r rubric.Rubric, g evaluation.Grading) string {
	var strong, weak []string
	for i, c := range g.Criteria {
		switch {
		case c.Level >= 3:
			strong = append(strong, r.Criteria[i].Name)
		case c.Level <= 1:
			weak = append(weak, r.Criteria[i].Name)
		}
	}
	var b strings.Builder
	if len(strong) > 0 {
		fmt.Fprintf(&b, "Strong on %s. ", join(strong))
	}
	if len(weak) > 0 {
		fmt.Fprintf(&b, "Needs work on %s. ", join(weak))
	}
	if len(strong) == 0 && len(weak) == 0 {
		b.WriteString("Correct in outline on every criterion; add reasons, trade-offs and failure modes to reach senior depth. ")
	}
	for _, m := range g.Misconceptions {
		fmt.Fprintf(&b, "The answer claims that %s, but %s ", lowerFirst(strings.TrimSuffix(m.Claim, ".")), lowerFirst(m.Why))
	}
	for _, f := range g.Flags {
		switch f {
		case evaluation.FlagKeywordList:
			b.WriteString("It lists terms without explaining them, so no criterion gets above level 1. ")
		case evaluation.FlagPromptInjection:
			b.WriteString("Text addressed to the grader was ignored and earned nothing. ")
		case evaluation.FlagShortAnswer:
			b.WriteString("The answer is too short to show depth. ")
		}
	}
	return strings.TrimSpace(b.String())
}

func join(xs []string) string {
	if len(xs) <= 1 {
		return strings.Join(xs, "")
	}
	return strings.Join(xs[:len(xs)-1], ", ") + " and " + xs[len(xs)-1]
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	// Keep acronyms such as "ACID" or "TTL" as they are.
	if len(s) > 1 && unicode.IsUpper(rune(s[0])) && unicode.IsUpper(rune(s[1])) {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}
