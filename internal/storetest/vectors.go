package storetest

import (
	"math"
	"testing"

	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/rubric"
)

// unit returns the i-th basis vector of dimension dims.
func unit(dims, i int) []float32 {
	v := make([]float32, dims)
	v[i] = 1
	return v
}

// normal returns v scaled to length 1.
func normal(v ...float32) []float32 {
	var n float64
	for _, x := range v {
		n += float64(x) * float64(x)
	}
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(float64(x) / math.Sqrt(n))
	}
	return out
}

func vector(id string, version int, model string, v []float32) evaluation.RubricVector {
	return evaluation.RubricVector{RubricID: id, Version: version, Model: model, Text: "text of " + id, Vector: v}
}

func matched(ms []evaluation.Match) []rubric.Rubric {
	out := make([]rubric.Rubric, len(ms))
	for i, m := range ms {
		out[i] = m.Rubric
	}
	return out
}

func testToEmbed(t *testing.T, newStore func(t *testing.T) evaluation.Store) {
	s := newStore(t)
	a, b, c := sample("a", 1, "Alpha"), sample("b", 1, "Beta"), sample("c", 1, "Gamma")
	mustSync(t, s, c, a, b)
	ok(t, "PutVectors", s.PutVectors(t.Context(), []evaluation.RubricVector{vector("a", 1, "m1", unit(3, 0))}))

	todo, err := s.RubricsToEmbed(t.Context(), "m1")
	ok(t, "RubricsToEmbed(m1)", err)
	sameJSON(t, "RubricsToEmbed(m1)", todo, []rubric.Rubric{b, c})
	todo, err = s.RubricsToEmbed(t.Context(), "m2")
	ok(t, "RubricsToEmbed(m2)", err)
	sameIDs(t, "RubricsToEmbed(m2): vectors are per model", todo, "a", "b", "c")

	_, err = s.UpdateRubric(t.Context(), sample("a", 1, "Alpha two"))
	ok(t, "UpdateRubric", err)
	ok(t, "ArchiveRubric", s.ArchiveRubric(t.Context(), "c"))
	todo, err = s.RubricsToEmbed(t.Context(), "m1")
	ok(t, "RubricsToEmbed(m1) after update", err)
	sameJSON(t, "RubricsToEmbed(m1): a new version needs vectors, archived c does not",
		todo, []rubric.Rubric{sample("a", 2, "Alpha two"), b})
}

// want is an expected match.
type want struct {
	id  string
	sim float64
}

func sameMatches(t *testing.T, what string, got []evaluation.Match, wants ...want) {
	t.Helper()
	if len(got) != len(wants) {
		t.Errorf("%s: got %d matches %v, want %v", what, len(got), got, wants)
		return
	}
	for i, w := range wants {
		// float32 vectors: the stores may sum in different precisions.
		if got[i].Rubric.ID != w.id || math.Abs(got[i].Similarity-w.sim) > 1e-4 {
			t.Errorf("%s: match %d: got %s %.5f, want %s %.5f", what, i, got[i].Rubric.ID, got[i].Similarity, w.id, w.sim)
		}
	}
}

func testSearch(t *testing.T, newStore func(t *testing.T) evaluation.Store) {
	// seed stores a, b, c, d with vectors of model m in 3 dimensions. A
	// rubric's similarity is the mean of its best two (evaluation.TopTwo):
	// for the query e0, a's three vectors give (1 + 0.7071) / 2, not its
	// best (1) nor the mean of all three.
	seed := func(t *testing.T) evaluation.Store {
		s := newStore(t)
		mustSync(t, s, sample("a", 1, "A"), sample("b", 1, "B"), sample("c", 1, "C"), sample("d", 1, "D"))
		ok(t, "PutVectors", s.PutVectors(t.Context(), []evaluation.RubricVector{
			vector("a", 1, "m", unit(3, 2)),
			vector("a", 1, "m", unit(3, 0)),
			vector("a", 1, "m", normal(1, 1, 0)),
			vector("b", 1, "m", normal(1, 1, 0)),
			vector("c", 1, "m", unit(3, 1)),
			vector("c", 1, "m", unit(3, 2)),
			vector("d", 1, "m", normal(-1, 0, 0)),
			vector("d", 1, "m", unit(3, 2)),
		}))
		return s
	}
	all := []want{{"a", (1 + math.Sqrt2/2) / 2}, {"b", math.Sqrt2 / 2}, {"c", 0}, {"d", -0.5}}

	t.Run("top two similarities per rubric, most similar first", func(t *testing.T) {
		s := seed(t)
		ms, err := s.SearchRubrics(t.Context(), "m", unit(3, 0), 10)
		ok(t, "SearchRubrics", err)
		sameMatches(t, "SearchRubrics", ms, all...)
		if len(ms) > 0 {
			sameJSON(t, "matched rubric", ms[0].Rubric, sample("a", 1, "A"))
		}
	})

	t.Run("k limits the matches", func(t *testing.T) {
		s := seed(t)
		for _, k := range []int{0, 1, 2, 4, 5} {
			ms, err := s.SearchRubrics(t.Context(), "m", unit(3, 0), k)
			ok(t, "SearchRubrics", err)
			sameMatches(t, "SearchRubrics k", ms, all[:min(k, len(all))]...)
		}
	})

	t.Run("other models and dimensions are ignored", func(t *testing.T) {
		s := seed(t)
		mustSync(t, s, sample("e", 1, "E"))
		ok(t, "PutVectors", s.PutVectors(t.Context(), []evaluation.RubricVector{
			vector("e", 1, "other", unit(3, 0)),
			vector("e", 1, "m", unit(8, 0)),
		}))
		ms, err := s.SearchRubrics(t.Context(), "m", unit(3, 0), 10)
		ok(t, "SearchRubrics(m, 3 dims)", err)
		sameMatches(t, "SearchRubrics(m, 3 dims)", ms, all...)
		ms, err = s.SearchRubrics(t.Context(), "other", unit(3, 0), 10)
		ok(t, "SearchRubrics(other)", err)
		sameMatches(t, "SearchRubrics(other)", ms, want{"e", 1})
		ms, err = s.SearchRubrics(t.Context(), "m", unit(8, 0), 10)
		ok(t, "SearchRubrics(m, 8 dims)", err)
		sameMatches(t, "SearchRubrics(m, 8 dims)", ms, want{"e", 1})
		ms, err = s.SearchRubrics(t.Context(), "unknown", unit(3, 0), 10)
		ok(t, "SearchRubrics(unknown)", err)
		sameMatches(t, "SearchRubrics(unknown)", ms)
	})

	t.Run("archived rubrics are ignored", func(t *testing.T) {
		s := seed(t)
		ok(t, "ArchiveRubric", s.ArchiveRubric(t.Context(), "a"))
		ms, err := s.SearchRubrics(t.Context(), "m", unit(3, 0), 10)
		ok(t, "SearchRubrics", err)
		sameMatches(t, "SearchRubrics", ms, all[1:]...)
	})

	t.Run("a new version needs new vectors", func(t *testing.T) {
		s := seed(t)
		_, err := s.UpdateRubric(t.Context(), sample("a", 1, "A two"))
		ok(t, "UpdateRubric", err)
		ms, err := s.SearchRubrics(t.Context(), "m", unit(3, 0), 10)
		ok(t, "SearchRubrics", err)
		sameMatches(t, "SearchRubrics before new vectors", ms, all[1:]...)
		ok(t, "PutVectors", s.PutVectors(t.Context(), []evaluation.RubricVector{vector("a", 2, "m", unit(3, 0))}))
		ms, err = s.SearchRubrics(t.Context(), "m", unit(3, 0), 1)
		ok(t, "SearchRubrics", err)
		sameMatches(t, "SearchRubrics after new vectors", ms, want{"a", 1})
		if len(ms) == 1 {
			sameJSON(t, "matched rubric", ms[0].Rubric, sample("a", 2, "A two"))
		}
	})

	t.Run("PutVectors replaces a version's vectors", func(t *testing.T) {
		s := seed(t)
		again := []evaluation.RubricVector{vector("b", 1, "m", normal(1, 1, 0))}
		ok(t, "PutVectors", s.PutVectors(t.Context(), again))
		ok(t, "PutVectors", s.PutVectors(t.Context(), again))
		ms, err := s.SearchRubrics(t.Context(), "m", unit(3, 0), 10)
		ok(t, "SearchRubrics", err)
		sameMatches(t, "SearchRubrics after storing b twice", ms, all...)

		// a's vectors become one orthogonal to the query: none of the old
		// stay.
		ok(t, "PutVectors", s.PutVectors(t.Context(), []evaluation.RubricVector{vector("a", 1, "m", normal(0, -1, 0))}))
		ms, err = s.SearchRubrics(t.Context(), "m", unit(3, 0), 10)
		ok(t, "SearchRubrics", err)
		sameMatches(t, "SearchRubrics after replacing a", ms, want{"b", math.Sqrt2 / 2}, want{"a", 0}, want{"c", 0}, want{"d", -0.5})
	})

	t.Run("model names are data", func(t *testing.T) {
		models := []string{
			"o'brien-embed",
			`back\slash\'model`,
			"x'); DROP TABLE rubrics; --",
			"名前/モデル:latest",
			`"quoted" $1 $$dollar$$ %s`,
		}
		s := newStore(t)
		mustSync(t, s, sample("a", 1, "A"))
		for _, model := range models {
			ok(t, "PutVectors("+model+")", s.PutVectors(t.Context(), []evaluation.RubricVector{vector("a", 1, model, unit(3, 0))}))
		}
		for _, model := range models {
			ms, err := s.SearchRubrics(t.Context(), model, unit(3, 0), 10)
			ok(t, "SearchRubrics("+model+")", err)
			sameMatches(t, "SearchRubrics("+model+")", ms, want{"a", 1})
			todo, err := s.RubricsToEmbed(t.Context(), model)
			ok(t, "RubricsToEmbed("+model+")", err)
			sameIDs(t, "RubricsToEmbed("+model+")", todo)
		}
		sameJSON(t, "Rubric(a)", mustRubric(t, s, "a"), sample("a", 1, "A"))
	})

	t.Run("empty store", func(t *testing.T) {
		ms, err := newStore(t).SearchRubrics(t.Context(), "m", unit(3, 0), 10)
		ok(t, "SearchRubrics", err)
		sameMatches(t, "SearchRubrics", ms)
	})
}
