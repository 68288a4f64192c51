package evaluation

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/assay-dev/assay/internal/fault"
	"github.com/assay-dev/assay/internal/rubric"
)

// Embedder turns texts into vectors. Model names the model and its
// weights: vectors of different models are never compared.
type Embedder interface {
	Model() string
	Embed(ctx context.Context, texts []string) ([][]float32, error)
}

// Grader grades an answer against a rubric. It returns levels, evidence and
// follow-ups; the Service checks them and computes the score itself.
type Grader interface {
	Kind() string
	Grade(ctx context.Context, in GradeInput) (Grading, error)
}

// GradeInput is what a grader sees.
type GradeInput struct {
	Rubric   rubric.Rubric
	Question string
	Answer   string
	Samples  int
}

// Grading is a grader's verdict before scoring.
type Grading struct {
	Criteria       []CriterionResult
	Misconceptions []MisconceptionFound
	MissingPoints  []string
	Feedback       string
	FollowUps      []FollowUp
	Flags          []string
	// Provenance, filled by graders that have it.
	Model         string
	PromptVersion string
	Temperature   *float64
	Seed          *int
	Usage         *Usage
	CostUSD       *float64
	Samples       int
	Confidence    *float64
}

// Request asks for one answer to be graded.
type Request struct {
	Answer       string
	Question     string
	RubricID     string
	CandidateRef string
	Metadata     map[string]string
	Grader       string
	// Inline, when set, is the rubric to grade against instead of one from
	// the bank: no retrieval happens.
	Inline *InlineRubric
	// Samples asks an LLM grader to grade N times and take the median
	// level per criterion; 0 means once.
	Samples int
	// FollowUpOf, when set, grades the answer to a follow-up question of an
	// earlier evaluation against the criterion that question probes.
	FollowUpOf *FollowUpRef
	// APIKeyID records the key making the request.
	APIKeyID string
	// Owner limits which earlier evaluations the request may refer to
	// (follow-ups): "" for all, else one key's.
	Owner string
	// NoCache forces a fresh grading even when an identical one exists.
	NoCache bool
}

// FollowUpRef points at follow-up number Index of an evaluation.
type FollowUpRef struct {
	EvaluationID string
	Index        int
}

// Fingerprinter is implemented by graders whose output depends on more than
// their kind (model, prompt version, sampling), so that the evaluation
// cache never serves a grading made with other settings.
type Fingerprinter interface {
	Fingerprint() string
}

// InlineRubric is a rubric sent with the request: a question with a
// reference answer, and optionally criteria. Front ends with their own
// question bank use it to grade without retrieval.
type InlineRubric struct {
	Question        string
	ReferenceAnswer string
	Criteria        []rubric.Criterion
}

// Observer is told what the service does, for metrics.
type Observer interface {
	Graded(kind string, d time.Duration, u *Usage, err error)
	Matched(similarity float64)
	Evaluated(band string, cached bool)
}

type noObserver struct{}

func (noObserver) Graded(string, time.Duration, *Usage, error) {}
func (noObserver) Matched(float64)                             {}
func (noObserver) Evaluated(string, bool)                      {}

// Config holds the service's limits and defaults.
type Config struct {
	// MatchThreshold is the lowest similarity at which a rubric matches.
	MatchThreshold float64
	// MaxAnswerRunes is the longest answer accepted, in code points.
	MaxAnswerRunes int
	// DefaultGrader is the kind used when a request names none.
	DefaultGrader string
	// Observer, if set, receives metrics.
	Observer Observer
}

// Limits on the small request fields, so that metadata cannot be used to
// store arbitrary blobs.
const (
	MaxQuestionRunes = 2000
	MaxCandidateRef  = 200
	MaxMetadataKeys  = 20
	MaxMetadataKey   = 64
	MaxMetadataValue = 512
	MaxSamples       = 9
)

// Service grades answers and serves the question bank.
type Service struct {
	store    Store
	embedder Embedder
	graders  map[string]Grader
	cfg      Config
	log      *slog.Logger
	now      func() time.Time
	// contentHashes remembers rubric.ContentHash for the cache key.
	contentHashes *rubric.Memo[string]
}

// NewService wires a service. The first grader is the default unless
// cfg.DefaultGrader names another.
func NewService(store Store, embedder Embedder, graders []Grader, cfg Config, log *slog.Logger) *Service {
	s := &Service{store: store, embedder: embedder, graders: map[string]Grader{}, cfg: cfg, log: log, now: time.Now,
		contentHashes: rubric.NewMemo[string](1024)}
	for _, g := range graders {
		s.graders[g.Kind()] = g
	}
	if s.cfg.Observer == nil {
		s.cfg.Observer = noObserver{}
	}
	if s.cfg.DefaultGrader == "" && len(graders) > 0 {
		s.cfg.DefaultGrader = graders[0].Kind()
	}
	return s
}

// Evaluate finds the rubric, grades the answer, scores it and stores the
// evaluation.
func (s *Service) Evaluate(ctx context.Context, req Request) (Evaluation, error) {
	if err := s.validate(&req); err != nil {
		return Evaluation{}, err
	}
	grader, ok := s.graders[req.Grader]
	if !ok {
		return Evaluation{}, fault.Field("/grader", fmt.Sprintf("unknown grader %q; available: %s", req.Grader, strings.Join(s.GraderKinds(), ", ")))
	}
	r, ref, link, err := s.rubricFor(ctx, req)
	if err != nil {
		return Evaluation{}, err
	}
	if link != nil {
		req.Question = link.Question
	}
	e := s.newEvaluation(req, ref)
	e.FollowUpOf = link
	if e.Question == "" {
		e.Question = r.Question
	}
	cached, err := s.gradeInto(ctx, &e, r, req, grader)
	if err != nil {
		return Evaluation{}, err
	}
	if e.JSON, err = json.Marshal(e); err != nil {
		return Evaluation{}, fmt.Errorf("encoding evaluation: %w", err)
	}
	if err := s.store.CreateEvaluation(ctx, e); err != nil {
		return Evaluation{}, fmt.Errorf("storing evaluation: %w", err)
	}
	s.cfg.Observer.Evaluated(e.Score.Band, cached)
	return e, nil
}

// newEvaluation starts an evaluation of req against the rubric ref.
func (s *Service) newEvaluation(req Request, ref RubricRef) Evaluation {
	return Evaluation{
		ID:           uuid.Must(uuid.NewV7()).String(),
		Status:       StatusCompleted,
		CreatedAt:    s.now().UTC().Truncate(time.Microsecond),
		Question:     req.Question,
		Answer:       req.Answer,
		CandidateRef: req.CandidateRef,
		Metadata:     req.Metadata,
		APIKeyID:     req.APIKeyID,
		Rubric:       ref,
	}
}

// holdsNUL reports whether any string in v contains U+0000: its JSON has
// the escape \u0000 after an even number of backslashes (after an odd
// number it is the text "\u0000", backslash included).
func holdsNUL(v any) bool {
	b, err := json.Marshal(v)
	if err != nil {
		return false
	}
	for i := bytes.Index(b, []byte(`\u0000`)); i >= 0; {
		n := 0
		for j := i - 1; j >= 0 && b[j] == '\\'; j-- {
			n++
		}
		if n%2 == 0 {
			return true
		}
		k := bytes.Index(b[i+1:], []byte(`\u0000`))
		if k < 0 {
			return false
		}
		i += 1 + k
	}
	return false
}

// noNUL is the detail for text with U+0000, which PostgreSQL cannot store
// in text or JSONB (and no answer needs).
const noNUL = "must not contain the NUL character (U+0000)"

func (s *Service) validate(req *Request) error {
	var fields []fault.FieldError
	bad := func(ptr, detail string) { fields = append(fields, fault.FieldError{Pointer: ptr, Detail: detail}) }
	req.Question = strings.TrimSpace(req.Question)
	// Normalise line ends and surrounding space once, here: evidence
	// offsets and the cache key both refer to this text.
	req.Answer = strings.TrimSpace(strings.ReplaceAll(req.Answer, "\r\n", "\n"))
	req.RubricID = strings.TrimSpace(req.RubricID)
	if req.Grader == "" {
		req.Grader = s.cfg.DefaultGrader
	}
	switch n := utf8.RuneCountInString(req.Answer); {
	case strings.TrimSpace(req.Answer) == "":
		bad("/answer", "must not be empty")
	case n > s.cfg.MaxAnswerRunes:
		bad("/answer", fmt.Sprintf("is %d characters long; the limit is %d", n, s.cfg.MaxAnswerRunes))
	case !utf8.ValidString(req.Answer):
		bad("/answer", "must be valid UTF-8")
	case strings.ContainsRune(req.Answer, 0):
		bad("/answer", noNUL)
	}
	if utf8.RuneCountInString(req.Question) > MaxQuestionRunes {
		bad("/question", fmt.Sprintf("must be at most %d characters", MaxQuestionRunes))
	}
	if strings.ContainsRune(req.Question, 0) {
		bad("/question", noNUL)
	}
	if strings.ContainsRune(req.CandidateRef, 0) {
		bad("/candidate_ref", noNUL)
	}
	if in := req.Inline; in != nil && (strings.ContainsRune(in.Question, 0) || strings.ContainsRune(in.ReferenceAnswer, 0) || holdsNUL(in.Criteria)) {
		bad("/rubric", noNUL)
	}
	if req.Inline != nil && req.RubricID != "" {
		bad("/rubric", "send either rubric or rubric_id, not both")
	}
	if req.FollowUpOf != nil && (req.Inline != nil || req.RubricID != "") {
		bad("/follow_up_of", "a follow-up answer is graded against its question's criterion; send no rubric or rubric_id with it")
	}
	if req.Samples < 0 || req.Samples > MaxSamples {
		bad("/samples", fmt.Sprintf("must be from 0 to %d", MaxSamples))
	}
	if len(req.CandidateRef) > MaxCandidateRef {
		bad("/candidate_ref", fmt.Sprintf("must be at most %d bytes", MaxCandidateRef))
	}
	if len(req.Metadata) > MaxMetadataKeys {
		bad("/metadata", fmt.Sprintf("must have at most %d keys", MaxMetadataKeys))
	}
	for k, v := range req.Metadata {
		if k == "" || len(k) > MaxMetadataKey || len(v) > MaxMetadataValue {
			bad("/metadata/"+escapePointer(k), fmt.Sprintf("keys must be 1 to %d bytes and values at most %d bytes", MaxMetadataKey, MaxMetadataValue))
		}
		if strings.ContainsRune(k, 0) || strings.ContainsRune(v, 0) {
			bad("/metadata/"+escapePointer(k), noNUL)
		}
	}
	if len(fields) == 0 {
		return nil
	}
	return &fault.Error{Kind: fault.Invalid, Message: strings.TrimPrefix(fields[0].Pointer, "/") + " " + fields[0].Detail, Fields: fields}
}

// rubricFor finds the rubric of a request: the probed criterion of a
// follow-up, or the bank rubric by id, question or answer, or an inline one.
func (s *Service) rubricFor(ctx context.Context, req Request) (r rubric.Rubric, ref RubricRef, link *FollowUpLink, err error) {
	if req.FollowUpOf != nil {
		return s.followUpRubric(ctx, req)
	}
	r, ref, err = s.resolveRubric(ctx, req)
	return r, ref, nil, err
}

// resolveRubric picks the rubric: by id, else by the question, else by the
// answer itself.
func (s *Service) resolveRubric(ctx context.Context, req Request) (rubric.Rubric, RubricRef, error) {
	if in := req.Inline; in != nil {
		r, err := rubric.FromReference(in.Question, in.ReferenceAnswer, in.Criteria)
		if err != nil {
			return r, RubricRef{}, err
		}
		return r, RubricRef{ID: r.ID, Version: r.Version, Title: r.Title, Similarity: 1, MatchedBy: MatchedInline}, nil
	}
	if req.RubricID != "" {
		r, err := s.store.Rubric(ctx, req.RubricID)
		if fault.KindOf(err) == fault.NotFound {
			return r, RubricRef{}, fault.Field("/rubric_id", fmt.Sprintf("no rubric has the id %q", req.RubricID))
		}
		if err != nil {
			return r, RubricRef{}, fmt.Errorf("loading rubric: %w", err)
		}
		return r, RubricRef{ID: r.ID, Version: r.Version, Title: r.Title, Similarity: 1, MatchedBy: MatchedByID}, nil
	}
	query, by := req.Question, MatchedByQuestion
	if query == "" {
		query, by = req.Answer, MatchedByAnswer
	}
	matches, err := s.Search(ctx, query, 3)
	if err != nil {
		return rubric.Rubric{}, RubricRef{}, err
	}
	if len(matches) == 0 || matches[0].Similarity < s.cfg.MatchThreshold {
		return rubric.Rubric{}, RubricRef{}, noMatch(matches, s.cfg.MatchThreshold, by)
	}
	m := matches[0]
	s.cfg.Observer.Matched(m.Similarity)
	return m.Rubric, RubricRef{ID: m.Rubric.ID, Version: m.Rubric.Version, Title: m.Rubric.Title, Similarity: round(m.Similarity, 4), MatchedBy: by}, nil
}

func noMatch(matches []Match, threshold float64, by string) error {
	type candidate struct {
		ID         string  `json:"id"`
		Title      string  `json:"title"`
		Question   string  `json:"question"`
		Similarity float64 `json:"similarity"`
	}
	cands := make([]candidate, 0, len(matches))
	for _, m := range matches {
		cands = append(cands, candidate{m.Rubric.ID, m.Rubric.Title, m.Rubric.Question, round(m.Similarity, 4)})
	}
	ptr := "/question"
	if by == MatchedByAnswer {
		ptr = "/answer"
	}
	return &fault.Error{
		Kind:    fault.NoMatch,
		Message: fmt.Sprintf("no rubric is similar enough to the %s (threshold %.2f); pick one of the candidates and send its id as rubric_id", by, threshold),
		Fields:  []fault.FieldError{{Pointer: ptr, Detail: "matches no rubric in the question bank"}},
		Extra:   map[string]any{"candidates": cands, "threshold": threshold},
	}
}

// Get returns one evaluation. With owner set, only an evaluation made by
// that key is found: another key's evaluation is reported as not found,
// which does not even confirm that it exists.
func (s *Service) Get(ctx context.Context, id, owner string) (Evaluation, error) {
	e, err := s.store.Evaluation(ctx, id)
	if err == nil && owner != "" && e.APIKeyID != owner {
		return Evaluation{}, NotFound("evaluation", id)
	}
	return e, err
}

// List returns a page of evaluations and the cursor of the next page, empty
// at the end.
func (s *Service) List(ctx context.Context, f EvaluationFilter) ([]Evaluation, string, error) {
	want := f.Limit
	f.Limit = want + 1 // one more tells whether there is a next page
	es, err := s.store.ListEvaluations(ctx, f)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(es) > want {
		es = es[:want]
		last := es[len(es)-1]
		next = EncodeCursor(Cursor{CreatedAt: last.CreatedAt, ID: last.ID})
	}
	return es, next, nil
}

// GraderKinds lists the graders this service can use.
func (s *Service) GraderKinds() []string {
	kinds := make([]string, 0, len(s.graders))
	for k := range s.graders {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	return kinds
}

// Ready reports whether the service's dependencies can serve requests.
func (s *Service) Ready(ctx context.Context) error { return s.store.Ping(ctx) }

func escapePointer(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}

func nonNil[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}
