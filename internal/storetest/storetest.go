// Package storetest is the contract every evaluation.Store meets. The
// memory and PostgreSQL stores both run it, so the service behaves the same
// on either; a behaviour worth relying on belongs here rather than in one
// store's own tests.
package storetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/fault"
	"github.com/assay-dev/assay/internal/rubric"
)

// Run runs the contract suite. newStore must return an empty store; every
// subtest gets its own.
func Run(t *testing.T, newStore func(t *testing.T) evaluation.Store) {
	t.Run("SyncRubrics", func(t *testing.T) { testSync(t, newStore) })
	t.Run("CreateUpdateArchive", func(t *testing.T) { testWrites(t, newStore) })
	t.Run("Errors", func(t *testing.T) { testErrors(t, newStore) })
	t.Run("ListRubrics", func(t *testing.T) { testListRubrics(t, newStore) })
	t.Run("RubricsToEmbed", func(t *testing.T) { testToEmbed(t, newStore) })
	t.Run("SearchRubrics", func(t *testing.T) { testSearch(t, newStore) })
	t.Run("Evaluations", func(t *testing.T) { testEvaluations(t, newStore) })
	t.Run("ListEvaluations", func(t *testing.T) { testListEvaluations(t, newStore) })
	t.Run("Async", func(t *testing.T) { testAsync(t, newStore) })
	t.Run("CacheAndOwners", func(t *testing.T) { testCacheAndOwners(t, newStore) })
	t.Run("Ping", func(t *testing.T) {
		if err := newStore(t).Ping(t.Context()); err != nil {
			t.Fatalf("Ping() = %v, want nil", err)
		}
	})
}

// sample returns a rubric with every field set, so that round trips are
// checked for nested content too.
func sample(id string, version int, title string, tags ...string) rubric.Rubric {
	levels := []string{"none", "vague", "partial", "solid", "expert"}
	return rubric.Rubric{
		ID:              id,
		Version:         version,
		Title:           title,
		Question:        "What is " + title + "?",
		Aliases:         []string{"Explain " + title, "Describe " + title + " in \"practice\""},
		Tags:            tags,
		Level:           "senior",
		ReferenceAnswer: "A reference answer about " + title + ".\nSecond line: ünïcödé, 'quotes' and \\ backslashes.",
		Criteria: []rubric.Criterion{
			{ID: "core", Name: "Core idea", Weight: 0.6, Description: "States the idea.", Levels: levels,
				KeyPoints: []rubric.KeyPoint{{ID: "k1", Point: "the point", Terms: []string{"term", "other term"}}}},
			{ID: "tradeoffs", Name: "Trade-offs", Weight: 0.4, Description: "Weighs costs.", Levels: levels},
		},
		Misconceptions: []rubric.Misconception{{ID: "m1", Claim: "a wrong claim", Why: "because", Signals: []string{"always"}}},
		FollowUps:      []rubric.FollowUp{{Question: "And then?", Criterion: "tradeoffs", Depth: 2}},
	}
}

// withVersion returns r with another version number.
func withVersion(r rubric.Rubric, v int) rubric.Rubric {
	r.Version = v
	return r
}

// sameJSON fails the test when got and want marshal differently: the
// stores keep what they are given exactly, including nil against empty.
func sameJSON(t *testing.T, what string, got, want any) {
	t.Helper()
	g, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	w, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if string(g) != string(w) {
		t.Errorf("%s:\n got %s\nwant %s", what, g, w)
	}
}

// wantKind fails the test when err is not a fault of kind want.
func wantKind(t *testing.T, what string, err error, want fault.Kind) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: got nil error, want a %v error", what, want)
		return
	}
	if got := fault.KindOf(err); got != want {
		t.Errorf("%s: got error kind %v (%v), want %v", what, got, err, want)
	}
}

func ok(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func mustSync(t *testing.T, s evaluation.Store, rs ...rubric.Rubric) evaluation.SyncResult {
	t.Helper()
	res, err := s.SyncRubrics(t.Context(), rs)
	ok(t, "SyncRubrics", err)
	return res
}

func mustRubric(t *testing.T, s evaluation.Store, id string) rubric.Rubric {
	t.Helper()
	r, err := s.Rubric(t.Context(), id)
	ok(t, fmt.Sprintf("Rubric(%q)", id), err)
	return r
}

// sameIDs compares the ids of rubrics with want, in order.
func sameIDs(t *testing.T, what string, rs []rubric.Rubric, want ...string) {
	t.Helper()
	got := make([]string, len(rs))
	for i, r := range rs {
		got[i] = r.ID
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s: got ids %q, want %q", what, got, want)
	}
}

// sameStrings compares string lists; nil and empty are equal.
func sameStrings(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s: got %q, want %q", what, got, want)
	}
}
