package calibrate

import (
	"math"
	"reflect"
	"testing"
)

func near(t *testing.T, name string, got, want float64) {
	t.Helper()
	if math.IsNaN(want) {
		if !math.IsNaN(got) {
			t.Errorf("%s = %v, want NaN", name, got)
		}
		return
	}
	if math.Abs(got-want) > 1e-9 {
		t.Errorf("%s = %.12f, want %.12f", name, got, want)
	}
}

func TestPearson(t *testing.T) {
	near(t, "identical", Pearson([]float64{1, 2, 3}, []float64{1, 2, 3}), 1)
	near(t, "reversed", Pearson([]float64{1, 2, 3}, []float64{3, 2, 1}), -1)
	// x = 1 2 3 4, y = 1 3 2 4: both means 2.5; deviations -1.5 -.5 .5 1.5
	// and -1.5 .5 -.5 1.5; Σdxdy = 2.25 - .25 - .25 + 2.25 = 4, Σdx² = Σdy²
	// = 5; r = 4/5 = 0.8.
	near(t, "swap", Pearson([]float64{1, 2, 3, 4}, []float64{1, 3, 2, 4}), 0.8)
	// Affine maps do not change r: 2x+1 against y is still 0.8.
	near(t, "affine", Pearson([]float64{3, 5, 7, 9}, []float64{1, 3, 2, 4}), 0.8)
	near(t, "constant", Pearson([]float64{2, 2, 2}, []float64{1, 2, 3}), math.NaN())
	near(t, "one pair", Pearson([]float64{1}, []float64{1}), math.NaN())
}

func TestRanks(t *testing.T) {
	got := Ranks([]float64{10, 20, 20, 30, 5})
	// 5 is first; the two 20s share ranks 3 and 4: 3.5.
	if want := []float64{2, 3.5, 3.5, 5, 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("Ranks = %v, want %v", got, want)
	}
}

func TestSpearman(t *testing.T) {
	// y = x² is monotone: ranks agree exactly, though Pearson is below 1.
	near(t, "monotone", Spearman([]float64{1, 2, 3, 4}, []float64{1, 4, 9, 16}), 1)
	// x = 1 2 2 3 ranks 1 2.5 2.5 4, y = 1 2 3 4; both mean 2.5;
	// deviations -1.5 0 0 1.5 and -1.5 -.5 .5 1.5; Σdxdy = 4.5, Σdx² =
	// 4.5, Σdy² = 5; ρ = 4.5/√22.5 = 3/√10 = 0.948683.
	near(t, "ties", Spearman([]float64{1, 2, 2, 3}, []float64{1, 2, 3, 4}), 3/math.Sqrt(10))
}

func TestErrors(t *testing.T) {
	pred, human := []float64{1, 2, 3}, []float64{2, 2, 5}
	// errors -1, 0, -2
	near(t, "MAE", MAE(pred, human), 1)                  // (1+0+2)/3
	near(t, "RMSE", RMSE(pred, human), math.Sqrt(5.0/3)) // √((1+0+4)/3) = 1.290994
	near(t, "Bias", Bias(pred, human), -1)               // (-1+0-2)/3
	near(t, "MAE empty", MAE(nil, nil), math.NaN())
}

func TestQWK(t *testing.T) {
	near(t, "perfect", QWK([]int{0, 1, 2}, []int{0, 1, 2}, 3), 1)
	// human 0 0 1 2, Assay 0 1 1 2, k = 3. O has ones at (0,0) (0,1) (1,1)
	// (2,2). Marginals: rows 2 1 1, columns 1 2 1, n = 4, so E = rows ×
	// columns / 4 = [.5 1 .5; .25 .5 .25; .25 .5 .25]. With w = (i-j)²/4:
	// Σ w·O = w(0,1) = .25; Σ w·E = (.25 + .5) + (.0625 + .0625) + (.25 +
	// .125) = 1.25. κ = 1 - .25/1.25 = 0.8.
	near(t, "one off", QWK([]int{0, 0, 1, 2}, []int{0, 1, 1, 2}, 3), 0.8)
	// Reversed on two categories: O = [0 1; 1 0], E = [.5 .5; .5 .5],
	// w(0,1) = w(1,0) = 1: κ = 1 - 2/1 = -1.
	near(t, "reversed", QWK([]int{0, 1}, []int{1, 0}, 2), -1)
	// Everyone in one category: no disagreement is possible by chance.
	near(t, "one category", QWK([]int{1, 1}, []int{1, 1}, 3), math.NaN())
}

func TestConfusion(t *testing.T) {
	got := Confusion([]int{0, 0, 1, 2, 7}, []int{0, 1, 1, 2, -1}, 3)
	// 7 and -1 are clamped to 2 and 0.
	want := [][]int{{1, 1, 0}, {0, 1, 0}, {1, 0, 1}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Confusion = %v, want %v", got, want)
	}
}

func TestLinearFit(t *testing.T) {
	// y = 2x + 1 exactly: slope 2, intercept 1, RMSE 0.
	s, i, e := LinearFit([]float64{0, 1, 2}, []float64{1, 3, 5})
	near(t, "slope", s, 2)
	near(t, "intercept", i, 1)
	near(t, "rmse", e, 0)
	// x = 0 1 2, y = 0 2 1: means 1 and 1; Σdxdy = (-1)(-1) + 0 + (1)(0) =
	// 1, Σdx² = 2: slope .5, intercept .5; fitted .5 1 1.5, residuals .5
	// -1 .5: RMSE = √(1.5/3) = 0.707107.
	s, i, e = LinearFit([]float64{0, 1, 2}, []float64{0, 2, 1})
	near(t, "slope", s, 0.5)
	near(t, "intercept", i, 0.5)
	near(t, "rmse", e, math.Sqrt(0.5))
}

func TestCategory(t *testing.T) {
	// Nearest 0.5 on the human scale, halves away from zero: 2.25 → 2.5.
	for v, want := range map[float64]int{0: 0, 0.2: 0, 0.25: 1, 2.25: 5, 3.74: 7, 4.9: 10, 5: 10, 6: 10} {
		if got := category(v, 11); got != want {
			t.Errorf("category(%v) = %d, want %d", v, got, want)
		}
	}
}
