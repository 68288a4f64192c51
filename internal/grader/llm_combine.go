package grader

import (
	"math"
	"slices"

	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/rubric"
)

// combine merges the gradings of a self-consistent set. Each criterion
// takes the median level (the lower median for an even count, erring
// strict) with the evidence, key points and comment of the first sample at
// that level. Misconceptions found by a majority are kept; follow-ups and
// feedback come from the sample closest to the medians; flags are pooled.
// Confidence is the mean, over criteria, of the share of samples that gave
// the median level.
func combine(r rubric.Rubric, samples []sampleResult) evaluation.Grading {
	n := len(samples)
	if n == 1 {
		g := samples[0].g
		g.Samples = 1
		return g
	}
	var g evaluation.Grading
	atMedian := make([]int, n)
	var agreement float64
	for ci := range r.Criteria {
		levels := make([]int, n)
		for si, s := range samples {
			levels[si] = s.g.Criteria[ci].Level
		}
		sorted := slices.Clone(levels)
		slices.Sort(sorted)
		median := sorted[(n-1)/2]
		agree, first := 0, -1
		for si, l := range levels {
			if l == median {
				agree++
				atMedian[si]++
				if first < 0 {
					first = si
				}
			}
		}
		agreement += float64(agree) / float64(n)
		g.Criteria = append(g.Criteria, samples[first].g.Criteria[ci])
	}
	conf := math.Round(agreement/float64(len(r.Criteria))*100) / 100
	g.Confidence = &conf

	rep := 0
	for si := range samples {
		if atMedian[si] > atMedian[rep] {
			rep = si
		}
	}
	g.FollowUps = samples[rep].g.FollowUps
	g.Feedback = samples[rep].g.Feedback

	count := map[string]int{}
	for _, s := range samples {
		for _, m := range s.g.Misconceptions {
			count[m.ID]++
		}
		g.Flags = addFlag(g.Flags, s.g.Flags...)
	}
	for _, s := range samples {
		for _, m := range s.g.Misconceptions {
			if 2*count[m.ID] > n {
				g.Misconceptions = append(g.Misconceptions, m)
				count[m.ID] = 0 // once
			}
		}
	}
	g.MissingPoints = missingPoints(r, g.Criteria)
	g.Samples = n
	return g
}
