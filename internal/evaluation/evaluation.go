// Package evaluation is the centre of Assay: what an evaluation is, the
// service that produces one (find the rubric, grade, score, store), and the
// small interfaces it needs from the adapters around it.
package evaluation

import (
	"encoding/json"
	"time"
)

// Status of an evaluation. Synchronous gradings are stored completed.
const (
	StatusQueued    = "queued"
	StatusRunning   = "running"
	StatusCompleted = "completed"
	StatusFailed    = "failed"
)

// Flags an evaluation can carry.
const (
	FlagKeywordList        = "keyword_list"
	FlagPromptInjection    = "prompt_injection_suspected"
	FlagUnverifiedEvidence = "unverified_evidence"
	FlagShortAnswer        = "short_answer"
)

// How a rubric was chosen.
const (
	MatchedByID       = "rubric_id"
	MatchedByQuestion = "question"
	MatchedByAnswer   = "answer"
	MatchedInline     = "inline"
	MatchedFollowUp   = "follow_up"
)

// Evaluation is one graded answer, as returned and stored.
type Evaluation struct {
	ID            string            `json:"id"`
	Status        string            `json:"status"`
	CreatedAt     time.Time         `json:"created_at"`
	Question      string            `json:"question,omitempty"`
	Answer        string            `json:"answer"`
	CandidateRef  string            `json:"candidate_ref,omitempty"`
	Metadata      map[string]string `json:"metadata,omitempty"`
	Rubric        RubricRef         `json:"rubric"`
	Score         Score             `json:"score"`
	Criteria      []CriterionResult `json:"criteria"`
	MissingPoints []string          `json:"missing_points"`
	// Misconceptions the answer states.
	Misconceptions []MisconceptionFound `json:"misconceptions"`
	Feedback       string               `json:"feedback"`
	FollowUps      []FollowUp           `json:"follow_ups"`
	Grader         GraderInfo           `json:"grader"`
	Flags          []string             `json:"flags"`
	// Cached is true when the grading was reused from an identical earlier
	// request instead of calling the grader.
	Cached bool `json:"cached"`
	// APIKeyID is the key that made the evaluation, empty when the API runs
	// open.
	APIKeyID string `json:"api_key_id,omitempty"`
	// FollowUpOf links an answer to a follow-up question to the evaluation
	// that asked it.
	FollowUpOf *FollowUpLink `json:"follow_up_of,omitempty"`
	// BatchID names the batch or regrade an asynchronous evaluation
	// belongs to.
	BatchID string `json:"batch_id,omitempty"`
	// RegradeOf links a regrade to the evaluation it grades again.
	RegradeOf *RegradeLink `json:"regrade_of,omitempty"`
	// CallbackURL receives the final evaluation (webhook), if set.
	CallbackURL string `json:"callback_url,omitempty"`
	// Error says why an asynchronous evaluation failed, as a problem
	// object like the one a synchronous request would have received.
	Error *Problem `json:"error,omitempty"`
	// CacheKey identifies the grading inputs (rubric version, answer,
	// grader, model, prompt); stores index it, clients never see it.
	CacheKey string `json:"-"`
	// JSON is the evaluation's encoding, made once by Service.Evaluate so
	// that the store and the response share it (it is 7 to 12 KB, and
	// encoding it was a twentieth of a grading's CPU); nil elsewhere. Any
	// change to a field makes it stale.
	JSON json.RawMessage `json:"-"`
}

// FollowUpLink names the follow-up question an evaluation answers.
type FollowUpLink struct {
	EvaluationID string `json:"evaluation_id"`
	Index        int    `json:"index"`
	Question     string `json:"question"`
	Criterion    string `json:"criterion"`
}

// RubricRef names the rubric version an answer was graded against.
type RubricRef struct {
	ID         string  `json:"id"`
	Version    int     `json:"version"`
	Title      string  `json:"title"`
	Similarity float64 `json:"similarity"`
	MatchedBy  string  `json:"matched_by"`
}

// Score is computed by Assay from the criterion levels, never by a grader.
type Score struct {
	Overall float64 `json:"overall"`
	Band    string  `json:"band"`
}

// CriterionResult is the grade of one criterion.
type CriterionResult struct {
	ID        string           `json:"id"`
	Name      string           `json:"name"`
	Weight    float64          `json:"weight"`
	Level     int              `json:"level"`
	MaxLevel  int              `json:"max_level"`
	Evidence  []Evidence       `json:"evidence"`
	KeyPoints []KeyPointResult `json:"key_points"`
	Comment   string           `json:"comment"`
}

// Evidence is a verbatim quote of the answer. Start and End are offsets in
// Unicode code points (runes) into the answer, End exclusive.
type Evidence struct {
	Quote string `json:"quote"`
	Start int    `json:"start"`
	End   int    `json:"end"`
}

// Key point coverage.
const (
	Covered = "covered"
	Partial = "partial"
	Missing = "missing"
)

// KeyPointResult says whether the answer made one key point.
type KeyPointResult struct {
	ID     string `json:"id"`
	Point  string `json:"point"`
	Status string `json:"status"`
}

// MisconceptionFound is a wrong claim the answer makes.
type MisconceptionFound struct {
	ID       string    `json:"id"`
	Claim    string    `json:"claim"`
	Why      string    `json:"why"`
	Evidence *Evidence `json:"evidence,omitempty"`
}

// FollowUp is a question to ask next and the gap it aims at.
type FollowUp struct {
	Question  string `json:"question"`
	Criterion string `json:"criterion"`
	Why       string `json:"why"`
	Depth     int    `json:"depth,omitempty"`
}

// GraderInfo is the provenance of a grading: enough to say what graded it
// and to reproduce it.
type GraderInfo struct {
	Kind          string   `json:"kind"`
	Model         string   `json:"model"`
	PromptVersion string   `json:"prompt_version,omitempty"`
	Temperature   *float64 `json:"temperature,omitempty"`
	Seed          *int     `json:"seed,omitempty"`
	LatencyMS     int64    `json:"latency_ms"`
	Tokens        *Usage   `json:"tokens,omitempty"`
	// CostUSD is computed from the configured price table, when the model
	// has a price.
	CostUSD *float64 `json:"cost_usd,omitempty"`
	// Samples is how many gradings were combined (self-consistency), and
	// Confidence their agreement from 0 to 1.
	Samples    int      `json:"samples,omitempty"`
	Confidence *float64 `json:"confidence,omitempty"`
}

// Usage counts the tokens of an LLM grading.
type Usage struct {
	Prompt     int `json:"prompt"`
	Completion int `json:"completion"`
	Total      int `json:"total"`
}

// Clone returns a deep copy, so that a store never shares memory with its
// callers.
func (e Evaluation) Clone() Evaluation {
	b, err := json.Marshal(e)
	if err != nil {
		panic(err) // only plain data: cannot fail
	}
	var out Evaluation
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}
