package calibrate

import (
	"math"
	"sort"
)

// The metrics compare predictions x with human grades y, pair by pair. A
// metric that is undefined for its input (fewer than two pairs, or no
// variance) is NaN; reports print it as n/a and encode it as null.

// Pearson returns Pearson's correlation coefficient of x and y.
func Pearson(x, y []float64) float64 {
	if len(x) != len(y) || len(x) < 2 {
		return math.NaN()
	}
	mx, my := mean(x), mean(y)
	var sxy, sxx, syy float64
	for i := range x {
		dx, dy := x[i]-mx, y[i]-my
		sxy += dx * dy
		sxx += dx * dx
		syy += dy * dy
	}
	if sxx == 0 || syy == 0 {
		return math.NaN()
	}
	return sxy / math.Sqrt(sxx*syy)
}

// Spearman returns Spearman's rank correlation: Pearson's on the ranks,
// tied values sharing their mean rank.
func Spearman(x, y []float64) float64 {
	if len(x) != len(y) {
		return math.NaN()
	}
	return Pearson(Ranks(x), Ranks(y))
}

// Ranks returns the 1-based rank of each value; ties get the mean of the
// ranks they span, so Ranks([10 20 20 30]) is [1 2.5 2.5 4].
func Ranks(x []float64) []float64 {
	idx := make([]int, len(x))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return x[idx[a]] < x[idx[b]] })
	out := make([]float64, len(x))
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && x[idx[j+1]] == x[idx[i]] {
			j++
		}
		r := float64(i+j)/2 + 1
		for k := i; k <= j; k++ {
			out[idx[k]] = r
		}
		i = j + 1
	}
	return out
}

// MAE returns the mean absolute error of x against y.
func MAE(x, y []float64) float64 {
	if len(x) != len(y) || len(x) == 0 {
		return math.NaN()
	}
	var s float64
	for i := range x {
		s += math.Abs(x[i] - y[i])
	}
	return s / float64(len(x))
}

// RMSE returns the root mean square error of x against y.
func RMSE(x, y []float64) float64 {
	if len(x) != len(y) || len(x) == 0 {
		return math.NaN()
	}
	var s float64
	for i := range x {
		d := x[i] - y[i]
		s += d * d
	}
	return math.Sqrt(s / float64(len(x)))
}

// Bias returns the mean of x - y: positive when the predictions are too
// generous.
func Bias(x, y []float64) float64 {
	if len(x) != len(y) || len(x) == 0 {
		return math.NaN()
	}
	var s float64
	for i := range x {
		s += x[i] - y[i]
	}
	return s / float64(len(x))
}

// QWK returns Cohen's kappa with quadratic weights for two raters' category
// indices in 0..k-1: 1 - Σ w·O / Σ w·E, where O is the observed confusion
// matrix, E the one expected by chance from its marginals, and w(i,j) =
// (i-j)²/(k-1)².
func QWK(a, b []int, k int) float64 {
	if len(a) != len(b) || len(a) == 0 || k < 2 {
		return math.NaN()
	}
	o := Confusion(a, b, k)
	rows, cols := make([]float64, k), make([]float64, k)
	for i := range k {
		for j := range k {
			rows[i] += float64(o[i][j])
			cols[j] += float64(o[i][j])
		}
	}
	n := float64(len(a))
	var num, den float64
	for i := range k {
		for j := range k {
			w := float64((i-j)*(i-j)) / float64((k-1)*(k-1))
			num += w * float64(o[i][j])
			den += w * rows[i] * cols[j] / n
		}
	}
	if den == 0 {
		return math.NaN()
	}
	return 1 - num/den
}

// Confusion counts the pairs: m[a[i]][b[i]]++. Indices outside 0..k-1 are
// clamped.
func Confusion(a, b []int, k int) [][]int {
	m := make([][]int, k)
	for i := range m {
		m[i] = make([]int, k)
	}
	for i := range a {
		m[clamp(a[i], k)][clamp(b[i], k)]++
	}
	return m
}

func clamp(i, k int) int { return max(0, min(k-1, i)) }

// LinearFit returns the least-squares line y ≈ slope·x + intercept and the
// RMSE of its fitted values: how well the predictions would do after the
// best affine recalibration (fitted in-sample, so optimistic).
func LinearFit(x, y []float64) (slope, intercept, rmse float64) {
	if len(x) != len(y) || len(x) < 2 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	mx, my := mean(x), mean(y)
	var sxy, sxx float64
	for i := range x {
		sxy += (x[i] - mx) * (y[i] - my)
		sxx += (x[i] - mx) * (x[i] - mx)
	}
	if sxx == 0 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	slope = sxy / sxx
	intercept = my - slope*mx
	fitted := make([]float64, len(x))
	for i := range x {
		fitted[i] = slope*x[i] + intercept
	}
	return slope, intercept, RMSE(fitted, y)
}

func mean(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}
