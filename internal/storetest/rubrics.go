package storetest

import (
	"context"
	"testing"

	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/fault"
)

func testSync(t *testing.T, newStore func(t *testing.T) evaluation.Store) {
	t.Run("adds new rubrics", func(t *testing.T) {
		s := newStore(t)
		a, b := sample("a", 1, "Alpha", "x"), sample("b", 1, "Beta")
		res := mustSync(t, s, b, a)
		sameStrings(t, "Added", res.Added, []string{"b", "a"})
		sameStrings(t, "Updated", res.Updated, nil)
		if res.Unchanged != 0 {
			t.Errorf("Unchanged: got %d, want 0", res.Unchanged)
		}
		sameJSON(t, "Rubric(a)", mustRubric(t, s, "a"), a)
		sameJSON(t, "Rubric(b)", mustRubric(t, s, "b"), b)
	})

	t.Run("unchanged rubric keeps its version", func(t *testing.T) {
		s := newStore(t)
		a := sample("a", 1, "Alpha")
		mustSync(t, s, a)
		res := mustSync(t, s, a)
		if len(res.Added)+len(res.Updated) != 0 || res.Unchanged != 1 {
			t.Errorf("second sync: got %+v, want 1 unchanged", res)
		}
		if got := mustRubric(t, s, "a").Version; got != 1 {
			t.Errorf("version: got %d, want 1", got)
		}
	})

	t.Run("changed rubric gets a new version and keeps the old one", func(t *testing.T) {
		s := newStore(t)
		old, changed := sample("a", 1, "Alpha"), sample("a", 1, "Alpha two")
		mustSync(t, s, old)
		res := mustSync(t, s, changed)
		sameStrings(t, "Updated", res.Updated, []string{"a"})
		sameJSON(t, "Rubric(a)", mustRubric(t, s, "a"), withVersion(changed, 2))
		v1, err := s.RubricVersion(t.Context(), "a", 1)
		ok(t, "RubricVersion(a, 1)", err)
		sameJSON(t, "RubricVersion(a, 1)", v1, old)
		v2, err := s.RubricVersion(t.Context(), "a", 2)
		ok(t, "RubricVersion(a, 2)", err)
		sameJSON(t, "RubricVersion(a, 2)", v2, withVersion(changed, 2))
		if res := mustSync(t, s, changed); res.Unchanged != 1 {
			t.Errorf("syncing the new content again: got %+v, want 1 unchanged", res)
		}
	})

	t.Run("a higher version in the file is kept", func(t *testing.T) {
		s := newStore(t)
		mustSync(t, s, sample("a", 1, "Alpha"))
		mustSync(t, s, sample("a", 7, "Alpha two"))
		if got := mustRubric(t, s, "a").Version; got != 7 {
			t.Errorf("version: got %d, want 7", got)
		}
	})

	t.Run("archived rubric synced again comes back as a new version", func(t *testing.T) {
		s := newStore(t)
		a := sample("a", 1, "Alpha")
		mustSync(t, s, a)
		ok(t, "ArchiveRubric", s.ArchiveRubric(t.Context(), "a"))
		res := mustSync(t, s, a)
		sameStrings(t, "Updated", res.Updated, []string{"a"})
		sameJSON(t, "Rubric(a)", mustRubric(t, s, "a"), withVersion(a, 2))
		list, err := s.ListRubrics(t.Context(), evaluation.RubricFilter{Limit: 10})
		ok(t, "ListRubrics", err)
		sameIDs(t, "ListRubrics", list, "a")
	})

	t.Run("mixed sync", func(t *testing.T) {
		s := newStore(t)
		mustSync(t, s, sample("a", 1, "Alpha"), sample("b", 1, "Beta"))
		res := mustSync(t, s, sample("a", 1, "Alpha"), sample("b", 1, "Beta two"), sample("c", 1, "Gamma"))
		sameStrings(t, "Added", res.Added, []string{"c"})
		sameStrings(t, "Updated", res.Updated, []string{"b"})
		if res.Unchanged != 1 {
			t.Errorf("Unchanged: got %d, want 1", res.Unchanged)
		}
	})
}

func testWrites(t *testing.T, newStore func(t *testing.T) evaluation.Store) {
	t.Run("create stores version 1 at least", func(t *testing.T) {
		for _, tc := range []struct{ given, want int }{{0, 1}, {1, 1}, {3, 3}} {
			s := newStore(t)
			got, err := s.CreateRubric(t.Context(), sample("a", tc.given, "Alpha"))
			ok(t, "CreateRubric", err)
			if got.Version != tc.want {
				t.Errorf("CreateRubric(version %d): got version %d, want %d", tc.given, got.Version, tc.want)
			}
			sameJSON(t, "Rubric(a)", mustRubric(t, s, "a"), got)
		}
	})

	t.Run("create of an archived id makes a new version", func(t *testing.T) {
		s := newStore(t)
		first, err := s.CreateRubric(t.Context(), sample("a", 1, "Alpha"))
		ok(t, "CreateRubric", err)
		ok(t, "ArchiveRubric", s.ArchiveRubric(t.Context(), "a"))
		got, err := s.CreateRubric(t.Context(), sample("a", 0, "Alpha again"))
		ok(t, "CreateRubric again", err)
		sameJSON(t, "CreateRubric again", got, sample("a", 2, "Alpha again"))
		sameJSON(t, "Rubric(a)", mustRubric(t, s, "a"), got)
		v1, err := s.RubricVersion(t.Context(), "a", 1)
		ok(t, "RubricVersion(a, 1)", err)
		sameJSON(t, "RubricVersion(a, 1)", v1, first)
	})

	t.Run("update of a changed rubric makes a new version", func(t *testing.T) {
		s := newStore(t)
		mustSync(t, s, sample("a", 1, "Alpha"))
		got, err := s.UpdateRubric(t.Context(), sample("a", 0, "Alpha two"))
		ok(t, "UpdateRubric", err)
		sameJSON(t, "UpdateRubric", got, sample("a", 2, "Alpha two"))
		sameJSON(t, "Rubric(a)", mustRubric(t, s, "a"), got)
	})

	t.Run("update of an unchanged rubric keeps its version", func(t *testing.T) {
		s := newStore(t)
		mustSync(t, s, sample("a", 1, "Alpha"))
		got, err := s.UpdateRubric(t.Context(), sample("a", 0, "Alpha"))
		ok(t, "UpdateRubric", err)
		sameJSON(t, "UpdateRubric", got, sample("a", 1, "Alpha"))
	})

	t.Run("archived rubric is hidden but its versions stay readable", func(t *testing.T) {
		s := newStore(t)
		a := sample("a", 1, "Alpha", "x")
		mustSync(t, s, a, sample("b", 1, "Beta", "x"))
		ok(t, "PutVectors", s.PutVectors(t.Context(), []evaluation.RubricVector{
			vector("a", 1, "m", unit(3, 0)), vector("b", 1, "m", unit(3, 1))}))
		ok(t, "ArchiveRubric", s.ArchiveRubric(t.Context(), "a"))

		_, err := s.Rubric(t.Context(), "a")
		wantKind(t, "Rubric(archived)", err, fault.NotFound)
		v1, err := s.RubricVersion(t.Context(), "a", 1)
		ok(t, "RubricVersion(archived, 1)", err)
		sameJSON(t, "RubricVersion(archived, 1)", v1, a)
		list, err := s.ListRubrics(t.Context(), evaluation.RubricFilter{Tag: "x", Limit: 10})
		ok(t, "ListRubrics", err)
		sameIDs(t, "ListRubrics", list, "b")
		ms, err := s.SearchRubrics(t.Context(), "m", unit(3, 0), 10)
		ok(t, "SearchRubrics", err)
		sameIDs(t, "SearchRubrics", matched(ms), "b")
		todo, err := s.RubricsToEmbed(t.Context(), "other")
		ok(t, "RubricsToEmbed", err)
		sameIDs(t, "RubricsToEmbed", todo, "b")
	})
}

// testErrors checks the fault kind of every failure the contract names.
func testErrors(t *testing.T, newStore func(t *testing.T) evaluation.Store) {
	tests := []struct {
		name string
		op   func(ctx context.Context, s evaluation.Store) error
		want fault.Kind
	}{
		{"create of an active id", func(ctx context.Context, s evaluation.Store) error {
			_, err := s.CreateRubric(ctx, sample("a", 0, "Other"))
			return err
		}, fault.Conflict},
		{"update of a missing rubric", func(ctx context.Context, s evaluation.Store) error {
			_, err := s.UpdateRubric(ctx, sample("missing", 1, "Missing"))
			return err
		}, fault.NotFound},
		{"update of an archived rubric", func(ctx context.Context, s evaluation.Store) error {
			_, err := s.UpdateRubric(ctx, sample("archived", 1, "Archived two"))
			return err
		}, fault.NotFound},
		{"archive of a missing rubric", func(ctx context.Context, s evaluation.Store) error {
			return s.ArchiveRubric(ctx, "missing")
		}, fault.NotFound},
		{"archive of an archived rubric", func(ctx context.Context, s evaluation.Store) error {
			return s.ArchiveRubric(ctx, "archived")
		}, fault.NotFound},
		{"missing rubric", func(ctx context.Context, s evaluation.Store) error {
			_, err := s.Rubric(ctx, "missing")
			return err
		}, fault.NotFound},
		{"missing version", func(ctx context.Context, s evaluation.Store) error {
			_, err := s.RubricVersion(ctx, "a", 2)
			return err
		}, fault.NotFound},
		{"version of a missing rubric", func(ctx context.Context, s evaluation.Store) error {
			_, err := s.RubricVersion(ctx, "missing", 1)
			return err
		}, fault.NotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			mustSync(t, s, sample("a", 1, "Alpha"), sample("archived", 1, "Archived"))
			ok(t, "ArchiveRubric", s.ArchiveRubric(t.Context(), "archived"))
			wantKind(t, tc.name, tc.op(t.Context(), s), tc.want)
		})
	}
}

func testListRubrics(t *testing.T, newStore func(t *testing.T) evaluation.Store) {
	seed := func(t *testing.T) evaluation.Store {
		s := newStore(t)
		// e's latest version swaps tag x for z, and d is archived: filters
		// look at active latest versions only.
		mustSync(t, s, sample("c", 1, "C", "x"), sample("a", 1, "A", "x", "y"), sample("b", 1, "B", "y"),
			sample("d", 1, "D", "x"), sample("e", 1, "E", "x"))
		mustSync(t, s, sample("e", 1, "E two", "z"))
		ok(t, "ArchiveRubric", s.ArchiveRubric(t.Context(), "d"))
		return s
	}

	tests := []struct {
		name string
		f    evaluation.RubricFilter
		want []string
	}{
		{"all by id", evaluation.RubricFilter{Limit: 10}, []string{"a", "b", "c", "e"}},
		{"limit", evaluation.RubricFilter{Limit: 2}, []string{"a", "b"}},
		{"zero limit", evaluation.RubricFilter{}, nil},
		{"after", evaluation.RubricFilter{After: "b", Limit: 10}, []string{"c", "e"}},
		{"after an id that does not exist", evaluation.RubricFilter{After: "bb", Limit: 10}, []string{"c", "e"}},
		{"after the last", evaluation.RubricFilter{After: "e", Limit: 10}, nil},
		{"tag", evaluation.RubricFilter{Tag: "x", Limit: 10}, []string{"a", "c"}},
		{"tag of the latest version", evaluation.RubricFilter{Tag: "z", Limit: 10}, []string{"e"}},
		{"tag after", evaluation.RubricFilter{Tag: "y", After: "a", Limit: 10}, []string{"b"}},
		{"tag with limit", evaluation.RubricFilter{Tag: "y", Limit: 1}, []string{"a"}},
		{"unknown tag", evaluation.RubricFilter{Tag: "nope", Limit: 10}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := seed(t).ListRubrics(t.Context(), tc.f)
			ok(t, "ListRubrics", err)
			sameIDs(t, "ListRubrics", got, tc.want...)
		})
	}
	t.Run("returns the latest version", func(t *testing.T) {
		got, err := seed(t).ListRubrics(t.Context(), evaluation.RubricFilter{After: "d", Limit: 1})
		ok(t, "ListRubrics", err)
		if len(got) != 1 {
			t.Fatalf("got %d rubrics, want 1", len(got))
		}
		sameJSON(t, "ListRubrics", got[0], sample("e", 2, "E two", "z"))
	})
}
