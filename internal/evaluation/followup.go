package evaluation

import (
	"context"
	"fmt"

	"github.com/assay-dev/assay/internal/fault"
	"github.com/assay-dev/assay/internal/rubric"
)

// followUpRubric narrows the rubric of the parent evaluation to the one
// criterion its follow-up question probes, with that criterion's level
// descriptors and key points, and the question as asked.
func (s *Service) followUpRubric(ctx context.Context, req Request) (rubric.Rubric, RubricRef, *FollowUpLink, error) {
	ptr := "/follow_up_of/evaluation_id"
	parent, err := s.Get(ctx, req.FollowUpOf.EvaluationID, req.Owner)
	if fault.KindOf(err) == fault.NotFound {
		return rubric.Rubric{}, RubricRef{}, nil, fault.Field(ptr, "no such evaluation")
	}
	if err != nil {
		return rubric.Rubric{}, RubricRef{}, nil, err
	}
	i := req.FollowUpOf.Index
	if i < 0 || i >= len(parent.FollowUps) {
		return rubric.Rubric{}, RubricRef{}, nil, fault.Field("/follow_up_of/index", fmt.Sprintf("must be from 0 to %d: the evaluation has %d follow-ups", len(parent.FollowUps)-1, len(parent.FollowUps)))
	}
	fu := parent.FollowUps[i]
	full, err := s.store.RubricVersion(ctx, parent.Rubric.ID, parent.Rubric.Version)
	if fault.KindOf(err) == fault.NotFound {
		return rubric.Rubric{}, RubricRef{}, nil, fault.Field(ptr, "the evaluation's rubric is not stored (inline rubrics cannot be followed up)")
	}
	if err != nil {
		return rubric.Rubric{}, RubricRef{}, nil, err
	}
	c, ok := full.Criterion(fu.Criterion)
	if !ok {
		return rubric.Rubric{}, RubricRef{}, nil, fault.Field("/follow_up_of/index", "the follow-up names a criterion the rubric no longer has")
	}
	narrow := full
	narrow.Question = fu.Question
	narrow.Criteria = []rubric.Criterion{*c}
	narrow.FollowUps = nil
	for _, f := range full.FollowUps {
		if f.Criterion == c.ID && f.Question != fu.Question {
			narrow.FollowUps = append(narrow.FollowUps, f)
		}
	}
	ref := RubricRef{ID: full.ID, Version: full.Version, Title: full.Title, Similarity: 1, MatchedBy: MatchedFollowUp}
	link := &FollowUpLink{EvaluationID: parent.ID, Index: i, Question: fu.Question, Criterion: c.ID}
	return narrow, ref, link, nil
}
