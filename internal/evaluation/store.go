package evaluation

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"time"

	"github.com/assay-dev/assay/internal/fault"
	"github.com/assay-dev/assay/internal/rubric"
)

// Store keeps rubrics, their vectors and evaluations. internal/memory and
// internal/postgres implement it; one contract suite tests both. Methods
// return fault.NotFound errors, never zero values, for missing things.
type Store interface {
	// SyncRubrics makes the store's active rubrics match rs: a new id is
	// added, a changed rubric gets a new version, an unchanged one keeps its
	// version. It is idempotent.
	SyncRubrics(ctx context.Context, rs []rubric.Rubric) (SyncResult, error)
	// Rubric returns the latest version of an active rubric.
	Rubric(ctx context.Context, id string) (rubric.Rubric, error)
	// RubricVersion returns one version, archived or not.
	RubricVersion(ctx context.Context, id string, version int) (rubric.Rubric, error)
	// ListRubrics returns active rubrics ordered by id.
	ListRubrics(ctx context.Context, f RubricFilter) ([]rubric.Rubric, error)
	// CreateRubric adds a rubric that has no active version; it returns a
	// fault.Conflict error when the id is taken. An archived id may be
	// created again, as a new version.
	CreateRubric(ctx context.Context, r rubric.Rubric) (rubric.Rubric, error)
	// UpdateRubric stores r as a new version of an active rubric (an
	// unchanged rubric keeps its version) and returns what is stored.
	UpdateRubric(ctx context.Context, r rubric.Rubric) (rubric.Rubric, error)
	// ArchiveRubric stops a rubric from matching or listing; its versions
	// stay readable for the evaluations graded with them.
	ArchiveRubric(ctx context.Context, id string) error

	// RubricsToEmbed returns the active rubrics whose latest version has no
	// vectors for model.
	RubricsToEmbed(ctx context.Context, model string) ([]rubric.Rubric, error)
	// PutVectors stores vectors of rubric versions for a model.
	PutVectors(ctx context.Context, vs []RubricVector) error
	// SearchRubrics returns up to k active rubrics, most similar first, each
	// with the similarity TopTwo computes from its vectors for model.
	SearchRubrics(ctx context.Context, model string, vec []float32, k int) ([]Match, error)

	// CreateEvaluation stores e, including its CacheKey.
	CreateEvaluation(ctx context.Context, e Evaluation) error
	Evaluation(ctx context.Context, id string) (Evaluation, error)
	// CachedEvaluation returns the newest completed evaluation with the
	// cache key, or a fault.NotFound error. Its slices may be shared with
	// other callers' results (a store may keep decoded hits): read only.
	CachedEvaluation(ctx context.Context, cacheKey string) (Evaluation, error)
	// ListEvaluations returns evaluations newest first (created_at, then id,
	// both descending), starting after f.After when it is set.
	ListEvaluations(ctx context.Context, f EvaluationFilter) ([]Evaluation, error)

	// UpdateEvaluation replaces the stored evaluation e.ID with e, in one
	// step, when its stored status is one of from, and reports whether it
	// did. This compare-and-set makes background work idempotent: a job
	// run twice stores one result. A missing id is a fault.NotFound error.
	UpdateEvaluation(ctx context.Context, e Evaluation, from ...string) (bool, error)
	// CreateQueued stores b (unless nil) and es together, all or none; an
	// id that exists is a fault.Conflict error.
	CreateQueued(ctx context.Context, b *Batch, es []Evaluation) error
	// Batch returns a batch with its Counts by status.
	Batch(ctx context.Context, id string) (Batch, error)
	// BatchEvaluations returns the evaluations of a batch ordered by id.
	BatchEvaluations(ctx context.Context, id string) ([]Evaluation, error)
	// FillBatch records that every evaluation of a batch exists: total of
	// them.
	FillBatch(ctx context.Context, id string, total int) error

	// Ping reports whether the store can serve requests.
	Ping(ctx context.Context) error
}

// SyncResult counts what a sync did.
type SyncResult struct {
	Added     []string `json:"added"`
	Updated   []string `json:"updated"`
	Unchanged int      `json:"unchanged"`
}

// RubricFilter selects rubrics for a page.
type RubricFilter struct {
	Tag   string
	After string // id of the last rubric of the previous page
	Limit int
}

// RubricVector is one embedded text of a rubric version.
type RubricVector struct {
	RubricID string
	Version  int
	Model    string
	Text     string
	Vector   []float32
}

// Match is a rubric found by similarity.
type Match struct {
	Rubric     rubric.Rubric
	Similarity float64
}

// EvaluationFilter selects evaluations for a page.
type EvaluationFilter struct {
	// APIKeyID, when set, limits the list to one key's evaluations.
	APIKeyID     string
	RubricID     string
	CandidateRef string
	After        *Cursor
	Limit        int
}

// Cursor is a keyset position: the last item of the previous page.
type Cursor struct {
	CreatedAt time.Time `json:"t"`
	ID        string    `json:"i"`
}

// EncodeCursor makes an opaque cursor for clients.
func EncodeCursor(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor reads a cursor made by EncodeCursor into v.
func DecodeCursor(s string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		return fault.Param("cursor", "is not a cursor this server issued")
	}
	return nil
}

// TopTwo scores a rubric from the cosine similarities of its vectors: the
// mean of the best two. A question that is really about a rubric tends to
// resemble several of its texts; a chance overlap of one word resembles
// only one, so averaging the top two keeps off-topic questions below the
// threshold without hurting paraphrases (docs/quality.md has the figures).
type TopTwo struct {
	best, second float64
	n            int
}

// Add records one vector's similarity.
func (t *TopTwo) Add(sim float64) {
	switch {
	case t.n == 0 || sim > t.best:
		t.best, t.second = sim, t.best
	case t.n == 1 || sim > t.second:
		t.second = sim
	}
	t.n++
}

// Similarity returns the rubric's similarity, false when nothing was added.
func (t *TopTwo) Similarity() (float64, bool) {
	switch t.n {
	case 0:
		return 0, false
	case 1:
		return t.best, true
	default:
		return (t.best + t.second) / 2, true
	}
}
