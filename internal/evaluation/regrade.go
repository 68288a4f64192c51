package evaluation

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
)

// regradeNamespace derives a regrade's evaluation ids from the regrade and
// the evaluation it grades again, so that a regrade job run twice cannot
// queue an evaluation twice: the second insert is a conflict.
var regradeNamespace = uuid.MustParse("5f0b8f4e-8a53-4d7e-9c57-2a7f3f0e6a11")

// regradePage is how many past evaluations a regrade reads and queues at a
// time, each page in one transaction.
const regradePage = 200

// Regrade starts grading rubric id's past evaluations again, against its
// latest version, in the background. The returned batch fills as its job
// runs.
func (a *Async) Regrade(ctx context.Context, rubricID, apiKeyID string) (Batch, error) {
	r, err := a.svc.store.Rubric(ctx, rubricID)
	if err != nil {
		return Batch{}, err
	}
	b := Batch{ID: newID(), Kind: KindRegrade, CreatedAt: a.svc.now().UTC().Truncate(time.Microsecond),
		APIKeyID: apiKeyID, RubricID: r.ID, RubricVersion: r.Version, Counts: map[string]int{}}
	if err := a.queue.EnqueueRegrade(ctx, b); err != nil {
		return Batch{}, fmt.Errorf("queueing regrade: %w", err)
	}
	return b, nil
}

// FillRegrade is the job of a regrade: it queues a new evaluation for every
// completed evaluation of the rubric made before the regrade (regrades and
// follow-ups excepted), linked to it by regrade_of. It is idempotent: what
// a previous run queued is skipped.
func (a *Async) FillRegrade(ctx context.Context, id string) error {
	store := a.svc.store
	b, err := store.Batch(ctx, id)
	if err != nil || b.Filled {
		return err
	}
	done := map[string]bool{}
	prior, err := store.BatchEvaluations(ctx, id)
	if err != nil {
		return err
	}
	for _, e := range prior {
		if e.RegradeOf != nil {
			done[e.RegradeOf.EvaluationID] = true
		}
	}
	total := len(prior)
	f := EvaluationFilter{RubricID: b.RubricID, Limit: regradePage}
	for {
		page, err := store.ListEvaluations(ctx, f)
		if err != nil {
			return err
		}
		var jobs []Job
		for _, old := range page {
			if done[old.ID] || old.Status != StatusCompleted || old.RegradeOf != nil || old.FollowUpOf != nil ||
				old.Rubric.ID != b.RubricID || !old.CreatedAt.Before(b.CreatedAt) {
				continue
			}
			jobs = append(jobs, a.regradeJob(b, old))
		}
		if len(jobs) > 0 {
			if err := a.queue.Enqueue(ctx, nil, jobs); err != nil {
				return fmt.Errorf("queueing regrades: %w", err)
			}
			for _, j := range jobs {
				a.notify(ctx, j.Evaluation.ID, EventQueued)
			}
			total += len(jobs)
		}
		if len(page) < f.Limit {
			break
		}
		last := page[len(page)-1]
		f.After = &Cursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}
	return store.FillBatch(ctx, id, total)
}

// regradeJob makes the queued evaluation that grades old again. It keeps
// old's owner, so whoever could read old can read its regrade, and skips
// the cache, since grading again is the point.
func (a *Async) regradeJob(b Batch, old Evaluation) Job {
	grader := old.Grader.Kind
	if _, ok := a.svc.graders[grader]; !ok {
		grader = a.svc.cfg.DefaultGrader
	}
	req := Request{Answer: old.Answer, Question: old.Question, RubricID: b.RubricID, CandidateRef: old.CandidateRef,
		Metadata: old.Metadata, Grader: grader, Samples: old.Grader.Samples, APIKeyID: old.APIKeyID, NoCache: true}
	e := a.svc.newEvaluation(req, RubricRef{})
	e.ID = uuid.NewSHA1(regradeNamespace, []byte(b.ID+"/"+old.ID)).String()
	e.Status, e.BatchID = StatusQueued, b.ID
	e.RegradeOf = &RegradeLink{EvaluationID: old.ID, RubricVersion: old.Rubric.Version, Score: old.Score}
	e.Criteria, e.MissingPoints, e.Misconceptions, e.FollowUps, e.Flags =
		[]CriterionResult{}, []string{}, []MisconceptionFound{}, []FollowUp{}, []string{}
	return Job{Evaluation: e, Request: req}
}

// RegradeReport is a regrade's progress and each answer's score change.
type RegradeReport struct {
	Batch
	Status  string        `json:"status"`
	Changes ChangeStats   `json:"changes"`
	Items   []RegradeItem `json:"items"`
}

// RegradeItem is one regraded answer.
type RegradeItem struct {
	EvaluationID string   `json:"evaluation_id"`
	RegradeOf    string   `json:"regrade_of"`
	Status       string   `json:"status"`
	OldVersion   int      `json:"old_rubric_version"`
	OldScore     float64  `json:"old_score"`
	OldBand      string   `json:"old_band"`
	NewScore     *float64 `json:"new_score,omitempty"`
	NewBand      string   `json:"new_band,omitempty"`
	Change       *float64 `json:"change,omitempty"`
}

// ChangeStats summarises the score changes of the completed regrades.
type ChangeStats struct {
	Count     int      `json:"count"`
	Up        int      `json:"up"`
	Down      int      `json:"down"`
	Unchanged int      `json:"unchanged"`
	Mean      float64  `json:"mean"`
	Median    float64  `json:"median"`
	Min       float64  `json:"min"`
	Max       float64  `json:"max"`
	Histogram []Bucket `json:"histogram"`
}

// Bucket counts changes from From (inclusive) to To (exclusive); a missing
// bound is open.
type Bucket struct {
	From  *float64 `json:"from,omitempty"`
	To    *float64 `json:"to,omitempty"`
	Count int      `json:"count"`
}

// changeEdges bound the histogram's buckets, in score points (0 to 100):
// the middle bucket, -1 to 1, is "about the same".
var changeEdges = []float64{-20, -10, -5, -1, 1, 5, 10, 20}

// RegradeReport returns a regrade's report. With owner set, another key's
// regrade is not found.
func (a *Async) RegradeReport(ctx context.Context, id, owner string) (RegradeReport, error) {
	b, es, err := a.Batch(ctx, id, owner)
	if err == nil && b.Kind != KindRegrade {
		err = NotFound("regrade", id)
	}
	if err != nil {
		return RegradeReport{}, err
	}
	rep := RegradeReport{Batch: b, Status: b.Status(), Items: make([]RegradeItem, 0, len(es))}
	var changes []float64
	for _, e := range es {
		if e.RegradeOf == nil {
			continue
		}
		it := RegradeItem{EvaluationID: e.ID, RegradeOf: e.RegradeOf.EvaluationID, Status: e.Status,
			OldVersion: e.RegradeOf.RubricVersion, OldScore: e.RegradeOf.Score.Overall, OldBand: e.RegradeOf.Score.Band}
		if e.Status == StatusCompleted {
			score, change := e.Score.Overall, round(e.Score.Overall-e.RegradeOf.Score.Overall, 1)
			it.NewScore, it.NewBand, it.Change = &score, e.Score.Band, &change
			changes = append(changes, change)
		}
		rep.Items = append(rep.Items, it)
	}
	rep.Changes = Summarize(changes)
	return rep, nil
}

// Summarize computes the statistics of score changes.
func Summarize(changes []float64) ChangeStats {
	st := ChangeStats{Count: len(changes), Histogram: make([]Bucket, len(changeEdges)+1)}
	for i := range st.Histogram {
		if i > 0 {
			st.Histogram[i].From = &changeEdges[i-1]
		}
		if i < len(changeEdges) {
			st.Histogram[i].To = &changeEdges[i]
		}
	}
	if len(changes) == 0 {
		return st
	}
	sorted := slices.Clone(changes)
	slices.Sort(sorted)
	sum := 0.0
	for _, c := range sorted {
		sum += c
		switch {
		case c > 0:
			st.Up++
		case c < 0:
			st.Down++
		default:
			st.Unchanged++
		}
		// The first edge above c closes c's bucket.
		i, _ := slices.BinarySearchFunc(changeEdges, c, func(edge, v float64) int {
			if edge <= v {
				return -1
			}
			return 1
		})
		st.Histogram[i].Count++
	}
	n := len(sorted)
	st.Mean = round(sum/float64(n), 2)
	if n%2 == 1 {
		st.Median = sorted[n/2]
	} else {
		st.Median = round((sorted[n/2-1]+sorted[n/2])/2, 2)
	}
	st.Min, st.Max = sorted[0], sorted[n-1]
	return st
}
