package evaluation

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/assay-dev/assay/internal/fault"
	"github.com/assay-dev/assay/internal/rubric"
)

// SyncRubrics stores rs as the active question bank and embeds any rubric
// that has no vectors for the active embedder.
func (s *Service) SyncRubrics(ctx context.Context, rs []rubric.Rubric) (SyncResult, error) {
	res, err := s.store.SyncRubrics(ctx, rs)
	if err != nil {
		return res, fmt.Errorf("syncing rubrics: %w", err)
	}
	return res, s.IndexRubrics(ctx)
}

// IndexRubrics computes the missing vectors for the active embedder, so a
// new embedding model needs no manual step.
func (s *Service) IndexRubrics(ctx context.Context) error {
	model := s.embedder.Model()
	todo, err := s.store.RubricsToEmbed(ctx, model)
	if err != nil {
		return fmt.Errorf("listing rubrics to embed: %w", err)
	}
	for _, r := range todo {
		texts := r.SearchTexts()
		vecs, err := s.embedder.Embed(ctx, texts)
		if err != nil {
			return fmt.Errorf("embedding rubric %s: %w", r.ID, err)
		}
		rv := make([]RubricVector, len(texts))
		for i := range texts {
			rv[i] = RubricVector{RubricID: r.ID, Version: r.Version, Model: model, Text: texts[i], Vector: vecs[i]}
		}
		if err := s.store.PutVectors(ctx, rv); err != nil {
			return fmt.Errorf("storing vectors of %s: %w", r.ID, err)
		}
	}
	if len(todo) > 0 {
		s.log.Info("rubrics embedded", "count", len(todo), "model", model)
	}
	return nil
}

// Search returns up to k rubrics most similar to q.
func (s *Service) Search(ctx context.Context, q string, k int) ([]Match, error) {
	vecs, err := s.embedder.Embed(ctx, []string{q})
	if err != nil {
		return nil, fmt.Errorf("embedding query: %w", err)
	}
	ms, err := s.store.SearchRubrics(ctx, s.embedder.Model(), vecs[0], k)
	if err != nil {
		return nil, fmt.Errorf("searching rubrics: %w", err)
	}
	for i := range ms {
		ms[i].Similarity = round(ms[i].Similarity, 4)
	}
	return ms, nil
}

// Rubric returns the latest version of a rubric.
func (s *Service) Rubric(ctx context.Context, id string) (rubric.Rubric, error) {
	return s.store.Rubric(ctx, id)
}

// RubricVersion returns one version of a rubric, for showing what an old
// evaluation was graded against.
func (s *Service) RubricVersion(ctx context.Context, id string, version int) (rubric.Rubric, error) {
	return s.store.RubricVersion(ctx, id, version)
}

// ListRubrics returns a page of rubrics and the next page's cursor.
func (s *Service) ListRubrics(ctx context.Context, f RubricFilter) ([]rubric.Rubric, string, error) {
	want := f.Limit
	f.Limit = want + 1
	rs, err := s.store.ListRubrics(ctx, f)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(rs) > want {
		rs = rs[:want]
		next = EncodeCursor(rs[len(rs)-1].ID)
	}
	return rs, next, nil
}

// ScoreOf computes the overall score, 0 to 100, as the weighted mean of the
// criterion levels, and its band.
func ScoreOf(r rubric.Rubric, crit []CriterionResult) Score {
	var sum, total float64
	for _, c := range crit {
		sum += c.Weight * float64(c.Level) / rubric.MaxLevel
		total += c.Weight
	}
	if total == 0 {
		return Score{Overall: 0, Band: BandOf(0)}
	}
	overall := round(100*sum/total, 1)
	return Score{Overall: overall, Band: BandOf(overall)}
}

// Band thresholds on the overall score, documented in the README.
const (
	BandStrong       = "strong"
	BandMeets        = "meets"
	BandPartial      = "partial"
	BandInsufficient = "insufficient"
)

// BandOf maps an overall score to its band: strong from 80, meets from 60,
// partial from 35, insufficient below.
func BandOf(overall float64) string {
	switch {
	case overall >= 80:
		return BandStrong
	case overall >= 60:
		return BandMeets
	case overall >= 35:
		return BandPartial
	default:
		return BandInsufficient
	}
}

// Check verifies a grading against its rubric and answer: every criterion
// exactly once and in rubric order, levels in range, evidence verbatim at
// its offsets, follow-ups naming real criteria. It also fills the names and
// weights from the rubric, so a grader cannot change them.
func (g *Grading) Check(r rubric.Rubric, answer string) error {
	if len(g.Criteria) != len(r.Criteria) {
		return fmt.Errorf("graded %d criteria, rubric has %d", len(g.Criteria), len(r.Criteria))
	}
	byID := map[string]CriterionResult{}
	for _, c := range g.Criteria {
		if _, dup := byID[c.ID]; dup {
			return fmt.Errorf("criterion %q graded twice", c.ID)
		}
		byID[c.ID] = c
	}
	runes := []rune(answer)
	out := make([]CriterionResult, 0, len(r.Criteria))
	for _, rc := range r.Criteria {
		c, ok := byID[rc.ID]
		if !ok {
			return fmt.Errorf("criterion %q not graded", rc.ID)
		}
		if c.Level < 0 || c.Level > rubric.MaxLevel {
			return fmt.Errorf("criterion %q: level %d out of range 0..%d", rc.ID, c.Level, rubric.MaxLevel)
		}
		for _, ev := range c.Evidence {
			if ev.Start < 0 || ev.End > len(runes) || ev.Start > ev.End || string(runes[ev.Start:ev.End]) != ev.Quote {
				// The quote is answer text: it stays out of the error, which
				// is logged.
				return fmt.Errorf("criterion %q: evidence at [%d,%d) is not verbatim in the answer", rc.ID, ev.Start, ev.End)
			}
		}
		c.Name, c.Weight, c.MaxLevel = rc.Name, rc.Weight, rubric.MaxLevel
		c.Evidence, c.KeyPoints = nonNil(c.Evidence), nonNil(c.KeyPoints)
		out = append(out, c)
	}
	g.Criteria = out
	for _, f := range g.FollowUps {
		if _, ok := r.Criterion(f.Criterion); !ok {
			return fmt.Errorf("follow-up names unknown criterion %q", f.Criterion)
		}
	}
	return nil
}

// NotFound is the error for a missing thing, for stores to share.
func NotFound(what, id string) error {
	return fault.New(fault.NotFound, "%s %q not found", what, id)
}

func round(x float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(x*p) / p
}

// CreateRubric checks r and adds it to the bank.
func (s *Service) CreateRubric(ctx context.Context, r rubric.Rubric) (rubric.Rubric, error) {
	if err := checkRubric(&r); err != nil {
		return rubric.Rubric{}, err
	}
	// Embed first: if the embedder is down, nothing is stored and a retry
	// starts clean instead of meeting a half-made rubric.
	if _, err := s.embedder.Embed(ctx, r.SearchTexts()); err != nil {
		return rubric.Rubric{}, fmt.Errorf("embedding rubric: %w", err)
	}
	out, err := s.store.CreateRubric(ctx, r)
	if err != nil {
		return out, err
	}
	return out, s.IndexRubrics(ctx)
}

// UpdateRubric checks r and stores it as a new version of rubric id.
func (s *Service) UpdateRubric(ctx context.Context, id string, r rubric.Rubric) (rubric.Rubric, error) {
	if r.ID == "" {
		r.ID = id
	}
	if r.ID != id {
		return rubric.Rubric{}, fault.Field("/id", fmt.Sprintf("must be %q, the id in the path", id))
	}
	// The store numbers versions; a client cannot pick one.
	r.Version = 0
	if err := checkRubric(&r); err != nil {
		return rubric.Rubric{}, err
	}
	if _, err := s.embedder.Embed(ctx, r.SearchTexts()); err != nil {
		return rubric.Rubric{}, fmt.Errorf("embedding rubric: %w", err)
	}
	out, err := s.store.UpdateRubric(ctx, r)
	if err != nil {
		return out, err
	}
	return out, s.IndexRubrics(ctx)
}

// ArchiveRubric stops a rubric from matching; old evaluations keep it.
func (s *Service) ArchiveRubric(ctx context.Context, id string) error {
	return s.store.ArchiveRubric(ctx, id)
}

// checkRubric applies the linter's rules to a rubric sent over the API and
// reports each problem with the JSON pointer of its field.
func checkRubric(r *rubric.Rubric) error {
	r.Normalize()
	version := r.Version
	if version == 0 {
		version = 1
	}
	withVersion := *r
	withVersion.Version = version
	ps := rubric.Check(withVersion)
	if len(ps) == 0 {
		return nil
	}
	fields := make([]fault.FieldError, len(ps))
	for i, p := range ps {
		fields[i] = fault.FieldError{Pointer: fieldPointer(p.Field), Detail: p.Message}
	}
	return &fault.Error{Kind: fault.Invalid, Message: fmt.Sprintf("the rubric breaks %d rules; see errors", len(ps)), Fields: fields}
}

// fieldPointer turns a linter path ("criteria[1].levels[3]") into a JSON
// pointer ("/criteria/1/levels/3").
func fieldPointer(field string) string {
	r := strings.NewReplacer("[", "/", "]", "", ".", "/")
	return "/" + r.Replace(field)
}
