package evaluation

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/assay-dev/assay/internal/rubric"
)

// reuse stores a new evaluation that copies the grading of an identical
// earlier one: same rubric version, answer, grader and settings.
func (s *Service) reuse(ctx context.Context, hit Evaluation, req Request, r rubric.Rubric, ref RubricRef) (Evaluation, error) {
	e := s.newEvaluation(req, ref)
	e.FollowUpOf = hit.FollowUpOf
	if e.Question == "" {
		e.Question = r.Question
	}
	e.Score, e.Criteria, e.MissingPoints, e.Misconceptions = hit.Score, hit.Criteria, hit.MissingPoints, hit.Misconceptions
	e.Feedback, e.FollowUps, e.Grader, e.Flags = hit.Feedback, hit.FollowUps, hit.Grader, hit.Flags
	e.Grader.LatencyMS = 0
	e.Cached = true
	e.CacheKey = hit.CacheKey
	if err := s.store.CreateEvaluation(ctx, e); err != nil {
		return Evaluation{}, fmt.Errorf("storing evaluation: %w", err)
	}
	s.cfg.Observer.Evaluated(e.Score.Band, true)
	return e, nil
}

// cacheKey identifies everything a grading depends on. The answer is the
// normalised one the grader sees, so offsets in a reused grading still
// point at the right text. The key is scoped to the API key: a hit must not
// tell one caller that another sent the same answer.
func cacheKey(r rubric.Rubric, req Request, g Grader) string {
	h := sha256.New()
	fp := ""
	if f, ok := g.(Fingerprinter); ok {
		fp = f.Fingerprint()
	}
	fmt.Fprintf(h, "%s\x00%s\x00%d\x00%s\x00%s\x00%d\x00%s\x00", req.APIKeyID, r.ID, r.Version, r.ContentHash(), g.Kind(), req.Samples, fp)
	h.Write([]byte(req.Answer))
	return hex.EncodeToString(h.Sum(nil))
}
