package grader

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/rubric"
)

// Limits on what a reply may carry; the excess is dropped.
const (
	maxLLMEvidence  = 3
	maxLLMFollowUps = 3
)

// validate turns a reply into a grading and lists the problems that make it
// unusable (each criterion exactly once, levels in range, real criteria and
// misconception ids). Evidence that is not in the answer is not a problem:
// it is dropped and the grading flagged unverified_evidence.
func validate(r rubric.Rubric, a *answerText, out *output) (evaluation.Grading, []string) {
	var g evaluation.Grading
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	unverified := false

	byID := map[string]int{}
	for i, c := range out.Criteria {
		if _, ok := r.Criterion(c.ID); !ok {
			bad("criteria[%d] has the unknown id %q; the criterion ids are %s", i, c.ID, quoteList(criterionIDs(r)))
			continue
		}
		if _, dup := byID[c.ID]; dup {
			bad("criterion %q is graded more than once", c.ID)
			continue
		}
		byID[c.ID] = i
	}
	for _, rc := range r.Criteria {
		i, ok := byID[rc.ID]
		if !ok {
			bad("criterion %q is not graded", rc.ID)
			continue
		}
		oc := out.Criteria[i]
		level, err := parseLevel(oc.Level)
		if err != nil {
			bad("criterion %q %v", rc.ID, err)
			continue
		}
		if level < 0 || level > rubric.MaxLevel {
			bad("criterion %q has level %d, outside 0 to %d", rc.ID, level, rubric.MaxLevel)
			continue
		}
		res := evaluation.CriterionResult{ID: rc.ID, Name: rc.Name, Weight: rc.Weight, Level: level,
			MaxLevel: rubric.MaxLevel, Comment: modelText(oc.Comment),
			Evidence: []evaluation.Evidence{}, KeyPoints: []evaluation.KeyPointResult{}}
		for _, q := range oc.Evidence {
			if strings.TrimSpace(q) == "" {
				continue
			}
			ev, ok := a.locate(q)
			if !ok {
				unverified = true
				continue
			}
			if len(res.Evidence) < maxLLMEvidence && !slices.Contains(res.Evidence, ev) {
				res.Evidence = append(res.Evidence, ev)
			}
		}
		res.KeyPoints = keyPointStatuses(rc, oc.KeyPoints)
		g.Criteria = append(g.Criteria, res)
	}

	seen := map[string]bool{}
	for _, m := range out.Misconceptions {
		rm, ok := misconception(r, m.ID)
		if !ok {
			bad("misconception %q is not one of the rubric's: %s", m.ID, quoteList(misconceptionIDs(r)))
			continue
		}
		if seen[m.ID] {
			continue
		}
		seen[m.ID] = true
		mf := evaluation.MisconceptionFound{ID: rm.ID, Claim: rm.Claim, Why: rm.Why}
		if strings.TrimSpace(m.Quote) != "" {
			if ev, ok := a.locate(m.Quote); ok {
				mf.Evidence = &ev
			} else {
				unverified = true
			}
		}
		g.Misconceptions = append(g.Misconceptions, mf)
	}

	for _, f := range out.FollowUps {
		if _, ok := r.Criterion(f.Criterion); !ok {
			bad("a follow-up names the unknown criterion %q", f.Criterion)
			continue
		}
		if strings.TrimSpace(f.Question) == "" || len(g.FollowUps) == maxLLMFollowUps {
			continue
		}
		g.FollowUps = append(g.FollowUps, evaluation.FollowUp{Question: modelText(f.Question),
			Criterion: f.Criterion, Why: modelText(f.Why)})
	}
	if len(problems) > 0 {
		return evaluation.Grading{}, problems
	}
	if len(g.FollowUps) == 0 {
		// The model asked nothing: take the rubric's own questions for the
		// weakest criteria.
		g.FollowUps = followUps(r, g.Criteria)
	}
	g.MissingPoints = missingPoints(r, g.Criteria)
	g.Feedback = modelText(out.Feedback)
	for _, f := range out.Flags {
		if slices.Contains(modelFlags, f) {
			g.Flags = addFlag(g.Flags, f)
		}
	}
	if unverified {
		g.Flags = addFlag(g.Flags, evaluation.FlagUnverifiedEvidence)
	}
	return g, nil
}

// keyPointStatuses keeps the valid statuses the reply gave for the
// criterion's key points, in rubric order. Statuses are optional: a key
// point without one is left out.
func keyPointStatuses(rc rubric.Criterion, given []outKeyPoint) []evaluation.KeyPointResult {
	status := map[string]string{}
	for _, kp := range given {
		s := strings.ToLower(strings.TrimSpace(kp.Status))
		if s == evaluation.Covered || s == evaluation.Partial || s == evaluation.Missing {
			if _, dup := status[kp.ID]; !dup {
				status[kp.ID] = s
			}
		}
	}
	out := []evaluation.KeyPointResult{}
	for _, kp := range rc.KeyPoints {
		if s, ok := status[kp.ID]; ok {
			out = append(out, evaluation.KeyPointResult{ID: kp.ID, Point: kp.Point, Status: s})
		}
	}
	return out
}

// missingPoints lists the key points graded missing, in rubric order.
func missingPoints(r rubric.Rubric, crit []evaluation.CriterionResult) []string {
	var out []string
	for _, c := range crit {
		for _, kp := range c.KeyPoints {
			if kp.Status == evaluation.Missing && len(out) < maxMissing {
				out = append(out, kp.Point)
			}
		}
	}
	return out
}

func misconception(r rubric.Rubric, id string) (rubric.Misconception, bool) {
	for _, m := range r.Misconceptions {
		if m.ID == id {
			return m, true
		}
	}
	return rubric.Misconception{}, false
}

func criterionIDs(r rubric.Rubric) []string {
	ids := make([]string, len(r.Criteria))
	for i, c := range r.Criteria {
		ids[i] = c.ID
	}
	return ids
}

func misconceptionIDs(r rubric.Rubric) []string {
	ids := make([]string, len(r.Misconceptions))
	for i, m := range r.Misconceptions {
		ids[i] = m.ID
	}
	return ids
}

func quoteList(ids []string) string {
	q := make([]string, len(ids))
	for i, id := range ids {
		q[i] = fmt.Sprintf("%q", id)
	}
	return strings.Join(q, ", ")
}

// locate finds a quote in the answer and returns it as evidence with rune
// offsets, quoting the answer itself. It tries the quote verbatim, then
// with whitespace collapsed and typographic quotes and dashes folded,
// without surrounding quote marks or a trailing full stop, and finally the
// longest fragment of a quote the model shortened with an ellipsis.
func (a *answerText) locate(quote string) (evaluation.Evidence, bool) {
	q := strings.TrimSpace(quote)
	if q == "" {
		return evaluation.Evidence{}, false
	}
	if i := strings.Index(a.shown, q); i >= 0 {
		start := utf8.RuneCountInString(a.shown[:i])
		return a.evidence(start, start+utf8.RuneCountInString(q)), true
	}
	nq := normaliseQuote(q)
	cands := []string{nq}
	if t := strings.Trim(nq, `"'`); t != nq {
		cands = append(cands, t)
	}
	for _, c := range cands {
		if t := strings.TrimRight(c, ".,;:"); t != c {
			cands = append(cands, t)
		}
	}
	if strings.Contains(nq, "...") || strings.Contains(nq, "…") {
		var best string
		for _, part := range strings.Split(strings.ReplaceAll(nq, "…", "..."), "...") {
			if p := strings.TrimSpace(part); utf8.RuneCountInString(p) > utf8.RuneCountInString(best) {
				best = p
			}
		}
		if utf8.RuneCountInString(best) >= 20 {
			cands = append(cands, best)
		}
	}
	for _, c := range cands {
		if c == "" {
			continue
		}
		n := a.normalised()
		if i := strings.Index(n.text, c); i >= 0 {
			ns := utf8.RuneCountInString(n.text[:i])
			ne := ns + utf8.RuneCountInString(c)
			return a.evidence(int(n.toOrig[ns]), int(n.toOrig[ne-1])+1), true
		}
	}
	return evaluation.Evidence{}, false
}

// evidence quotes the answer's runes [start, end).
func (a *answerText) evidence(start, end int) evaluation.Evidence {
	return evaluation.Evidence{Quote: runeSlice(a.orig, start, end), Start: start, End: end}
}

// runeSlice is string([]rune(s)[start:end]) without the rune slice: the
// answer is walked once per quote instead of copied as runes per grading.
func runeSlice(s string, start, end int) string {
	from, n := len(s), 0
	for i := range s {
		if n == start {
			from = i
		}
		if n == end {
			return s[from:i]
		}
		n++
	}
	return s[from:]
}

// modelText is text the model wrote, trimmed and without NUL characters,
// which PostgreSQL cannot store in text or JSONB: a reply with one must not
// make the evaluation impossible to save.
func modelText(s string) string {
	return strings.TrimSpace(strings.ReplaceAll(s, "\x00", ""))
}
