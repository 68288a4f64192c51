package rubric

import (
	"fmt"
	"regexp"
	"strings"
)

var slug = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// Seniority levels a rubric can be written for.
var seniorities = map[string]bool{"junior": true, "mid": true, "senior": true}

// Limits from rubrics/README.md; the linter and the write API enforce them.
const (
	MinCriteria       = 3
	MaxCriteria       = 6
	MinKeyPoints      = 2
	MaxKeyPoints      = 6
	MinTerms          = 3
	MaxTerms          = 10
	MinMisconceptions = 3
	MaxSignals        = 6
	MinFollowUps      = 4
	// MaxWeight bounds a criterion's weight: weights are relative, and a cap
	// keeps their sum finite, so a score can never be NaN.
	MaxWeight = 1000
)

// Check returns every rule r breaks, each naming its field. File is left
// empty for the caller to fill.
func Check(r Rubric) Problems {
	var ps Problems
	add := func(field, format string, args ...any) {
		ps = append(ps, Problem{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	required := func(field, v string) {
		if strings.TrimSpace(v) == "" {
			add(field, "is required")
		}
	}
	if !slug.MatchString(r.ID) {
		add("id", "must be a slug (lower-case letters, digits and single hyphens), got %q", r.ID)
	}
	if r.Version < 1 {
		add("version", "must be at least 1")
	}
	required("title", r.Title)
	required("question", r.Question)
	required("reference_answer", r.ReferenceAnswer)
	if !seniorities[r.Level] {
		add("level", "must be junior, mid or senior, got %q", r.Level)
	}
	for i, a := range r.Aliases {
		required(fmt.Sprintf("aliases[%d]", i), a)
	}
	for i, t := range r.Tags {
		if !slug.MatchString(t) {
			add(fmt.Sprintf("tags[%d]", i), "must be a slug, got %q", t)
		}
	}
	if n := len(r.Criteria); n < MinCriteria || n > MaxCriteria {
		add("criteria", "must have %d to %d criteria, has %d", MinCriteria, MaxCriteria, n)
	}
	ids := map[string]bool{}
	for i, c := range r.Criteria {
		f := fmt.Sprintf("criteria[%d]", i)
		if !slug.MatchString(c.ID) {
			add(f+".id", "must be a slug, got %q", c.ID)
		} else if ids[c.ID] {
			add(f+".id", "%q is used twice", c.ID)
		}
		ids[c.ID] = true
		required(f+".name", c.Name)
		required(f+".description", c.Description)
		if !(c.Weight > 0 && c.Weight <= MaxWeight) {
			add(f+".weight", "must be greater than 0 and at most %d", MaxWeight)
		}
		if len(c.Levels) != Levels {
			add(f+".levels", "must have exactly %d descriptors (levels 0 to %d), has %d", Levels, MaxLevel, len(c.Levels))
		}
		for j, l := range c.Levels {
			required(fmt.Sprintf("%s.levels[%d]", f, j), l)
		}
		checkKeyPoints(f, c.KeyPoints, add, required)
	}
	if n := len(r.Misconceptions); n < MinMisconceptions {
		add("misconceptions", "must have at least %d, has %d", MinMisconceptions, n)
	}
	mids := map[string]bool{}
	for i, m := range r.Misconceptions {
		f := fmt.Sprintf("misconceptions[%d]", i)
		if !slug.MatchString(m.ID) {
			add(f+".id", "must be a slug, got %q", m.ID)
		} else if mids[m.ID] {
			add(f+".id", "%q is used twice", m.ID)
		}
		mids[m.ID] = true
		required(f+".claim", m.Claim)
		required(f+".why", m.Why)
		if n := len(m.Signals); n < 1 || n > MaxSignals {
			add(f+".signals", "must have 1 to %d phrases, has %d", MaxSignals, n)
		}
		for j, s := range m.Signals {
			if strings.TrimSpace(s) == "" || s != strings.ToLower(s) {
				add(fmt.Sprintf("%s.signals[%d]", f, j), "must be a non-empty lower-case phrase")
			}
		}
	}
	if n := len(r.FollowUps); n < MinFollowUps {
		add("follow_ups", "must have at least %d, has %d", MinFollowUps, n)
	}
	for i, fu := range r.FollowUps {
		f := fmt.Sprintf("follow_ups[%d]", i)
		required(f+".question", fu.Question)
		if !ids[fu.Criterion] {
			add(f+".criterion", "%q is not a criterion of this rubric", fu.Criterion)
		}
		if fu.Depth < 1 || fu.Depth > 3 {
			add(f+".depth", "must be 1, 2 or 3, got %d", fu.Depth)
		}
	}
	return ps
}

func checkKeyPoints(f string, kps []KeyPoint, add func(string, string, ...any), required func(string, string)) {
	if n := len(kps); n < MinKeyPoints || n > MaxKeyPoints {
		add(f+".key_points", "must have %d to %d key points, has %d", MinKeyPoints, MaxKeyPoints, n)
	}
	seen := map[string]bool{}
	for i, kp := range kps {
		k := fmt.Sprintf("%s.key_points[%d]", f, i)
		if !slug.MatchString(kp.ID) {
			add(k+".id", "must be a slug, got %q", kp.ID)
		} else if seen[kp.ID] {
			add(k+".id", "%q is used twice", kp.ID)
		}
		seen[kp.ID] = true
		required(k+".point", kp.Point)
		if n := len(kp.Terms); n < MinTerms || n > MaxTerms {
			add(k+".terms", "must have %d to %d terms, has %d", MinTerms, MaxTerms, n)
		}
		for j, t := range kp.Terms {
			if strings.TrimSpace(t) == "" || t != strings.ToLower(t) {
				add(fmt.Sprintf("%s.terms[%d]", k, j), "must be a non-empty lower-case term, got %q", t)
			}
		}
	}
}
