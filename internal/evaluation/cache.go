package evaluation

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/assay-dev/assay/internal/fault"
	"github.com/assay-dev/assay/internal/rubric"
)

// gradeInto fills e with a grading, for the synchronous and the queued
// paths alike: reused from the cache, or fresh from the grader, checked
// and scored.
func (s *Service) gradeInto(ctx context.Context, e *Evaluation, r rubric.Rubric, req Request, grader Grader) (cached bool, err error) {
	e.CacheKey = s.cacheKey(r, req, grader)
	if !req.NoCache {
		hit, err := s.store.CachedEvaluation(ctx, e.CacheKey)
		switch {
		case err == nil:
			e.Score, e.Criteria, e.MissingPoints, e.Misconceptions = hit.Score, hit.Criteria, hit.MissingPoints, hit.Misconceptions
			e.Feedback, e.FollowUps, e.Grader, e.Flags = hit.Feedback, hit.FollowUps, hit.Grader, hit.Flags
			e.Grader.LatencyMS, e.Cached = 0, true
			// The copy is stored without the key: the grading it copies
			// stays the key's entry, instead of the entry moving to a new
			// row on every hit (which let a store neither keep a decoded
			// hit nor keep the key's index entries few).
			e.CacheKey = ""
			return true, nil
		case fault.KindOf(err) != fault.NotFound:
			return false, fmt.Errorf("looking up the evaluation cache: %w", err)
		}
	}
	start := time.Now()
	g, err := grader.Grade(ctx, GradeInput{Rubric: r, Question: req.Question, Answer: req.Answer, Samples: req.Samples})
	s.cfg.Observer.Graded(grader.Kind(), time.Since(start), g.Usage, err)
	if err != nil {
		return false, fmt.Errorf("grading with %s: %w", grader.Kind(), err)
	}
	if err := g.Check(r, req.Answer); err != nil {
		return false, fault.Wrap(err, fault.Upstream, "the grader returned an invalid grading")
	}
	e.Criteria, e.MissingPoints, e.Misconceptions = g.Criteria, nonNil(g.MissingPoints), nonNil(g.Misconceptions)
	e.Feedback, e.FollowUps, e.Flags = g.Feedback, nonNil(g.FollowUps), nonNil(g.Flags)
	e.Grader = GraderInfo{Kind: grader.Kind(), Model: g.Model, PromptVersion: g.PromptVersion,
		Temperature: g.Temperature, Seed: g.Seed, LatencyMS: time.Since(start).Milliseconds(),
		Tokens: g.Usage, CostUSD: g.CostUSD, Samples: g.Samples, Confidence: g.Confidence}
	e.Score = ScoreOf(r, e.Criteria)
	return false, nil
}

// cacheKey identifies everything a grading depends on. The answer is the
// normalised one the grader sees, so offsets in a reused grading still
// point at the right text. The key is scoped to the API key: a hit must not
// tell one caller that another sent the same answer.
func (s *Service) cacheKey(r rubric.Rubric, req Request, g Grader) string {
	h := sha256.New()
	fp := ""
	if f, ok := g.(Fingerprinter); ok {
		fp = f.Fingerprint()
	}
	// ContentHash encodes the whole rubric as JSON; it is remembered.
	content, _ := s.contentHashes.Get(&r, func(r *rubric.Rubric) (string, error) { return r.ContentHash(), nil })
	fmt.Fprintf(h, "%s\x00%s\x00%d\x00%s\x00%s\x00%d\x00%s\x00", req.APIKeyID, r.ID, r.Version, content, g.Kind(), req.Samples, fp)
	h.Write([]byte(req.Answer))
	return hex.EncodeToString(h.Sum(nil))
}
