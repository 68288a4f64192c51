package calibrate

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
)

// QWKScale says how scores become categories for the quadratic weighted
// kappa and the confusion matrix.
const QWKScale = "human scale rounded to the nearest 0.5"

// Report is the outcome of a calibration run. Figures compare Assay's
// score, mapped onto the human scale as score_max × overall / 100, with
// the human score. Metrics that are undefined (no variance) are null.
type Report struct {
	Grader string   `json:"grader"`
	Models []string `json:"models"`
	// N is the number of answers in the figures; Failed were not graded.
	N        int       `json:"n"`
	Failed   int       `json:"failed"`
	Failures []Failure `json:"failures,omitempty"`
	// Resumed answers were graded by an earlier run, kept in State.
	Resumed  int      `json:"resumed"`
	State    string   `json:"state,omitempty"`
	Pearson  *float64 `json:"pearson"`
	Spearman *float64 `json:"spearman"`
	QWK      *float64 `json:"qwk"`
	QWKScale string   `json:"qwk_scale"`
	MAE      float64  `json:"mae"`
	RMSE     float64  `json:"rmse"`
	// Bias is the mean of Assay minus human: negative when Assay is
	// stricter than the human graders.
	Bias          float64 `json:"bias"`
	MeanHuman     float64 `json:"mean_human"`
	MeanPredicted float64 `json:"mean_predicted"`
	// Fit is the best affine recalibration of Assay's scores, fitted on
	// this data: what RMSE a per-data-set rescaling could reach.
	Fit            *Fit            `json:"linear_fit"`
	Confusion      ConfusionMatrix `json:"confusion"`
	WorstQuestions []QuestionError `json:"worst_questions"`
	Seconds        float64         `json:"seconds"`
}

// Fit is human ≈ Slope × predicted + Intercept.
type Fit struct {
	Slope     float64 `json:"slope"`
	Intercept float64 `json:"intercept"`
	RMSE      float64 `json:"rmse"`
}

// ConfusionMatrix counts answers by human category (rows) and Assay
// category (columns).
type ConfusionMatrix struct {
	Labels []string `json:"labels"`
	Counts [][]int  `json:"counts"`
}

// QuestionError is the error on one question's answers.
type QuestionError struct {
	Question      string  `json:"question"`
	ID            string  `json:"question_id,omitempty"`
	N             int     `json:"n"`
	MeanHuman     float64 `json:"mean_human"`
	MeanPredicted float64 `json:"mean_predicted"`
	MAE           float64 `json:"mae"`
}

func buildReport(items []Item, done map[string]Result, opts Options) Report {
	rep := Report{Grader: opts.Grader, QWKScale: QWKScale, Models: []string{}, WorstQuestions: []QuestionError{}}
	var pred, human []float64
	var pc, hc []int
	maxScale := 0.0
	for _, it := range items {
		maxScale = max(maxScale, it.ScoreMax)
	}
	k := int(math.Round(2*maxScale)) + 1
	models := map[string]bool{}
	type group struct {
		QuestionError
		absErr, sumH, sumP float64
	}
	groups := map[string]*group{}
	var order []string
	for _, it := range items {
		r, ok := done[it.key(opts.Grader)]
		if !ok {
			continue
		}
		p := it.ScoreMax * r.Overall / 100
		pred = append(pred, p)
		human = append(human, it.Score)
		pc = append(pc, category(p, k))
		hc = append(hc, category(it.Score, k))
		if r.Model != "" {
			models[r.Model] = true
		}
		g := groups[it.group()]
		if g == nil {
			g = &group{QuestionError: QuestionError{Question: it.Question, ID: it.QuestionID}}
			groups[it.group()] = g
			order = append(order, it.group())
		}
		g.N++
		g.absErr += math.Abs(p - it.Score)
		g.sumH += it.Score
		g.sumP += p
	}
	for m := range models {
		rep.Models = append(rep.Models, m)
	}
	sort.Strings(rep.Models)
	rep.N = len(pred)
	if rep.N == 0 {
		return rep
	}
	rep.Pearson = num(Pearson(pred, human))
	rep.Spearman = num(Spearman(pred, human))
	rep.QWK = num(QWK(hc, pc, k))
	rep.MAE = round4(MAE(pred, human))
	rep.RMSE = round4(RMSE(pred, human))
	rep.Bias = round4(Bias(pred, human))
	rep.MeanHuman = round4(mean(human))
	rep.MeanPredicted = round4(mean(pred))
	if s, i, e := LinearFit(pred, human); !math.IsNaN(s) {
		rep.Fit = &Fit{Slope: round4(s), Intercept: round4(i), RMSE: round4(e)}
	}
	rep.Confusion.Counts = Confusion(hc, pc, k)
	for c := range k {
		rep.Confusion.Labels = append(rep.Confusion.Labels, strconv.FormatFloat(float64(c)/2, 'f', -1, 64))
	}
	var qs []QuestionError
	for _, key := range order {
		g := groups[key]
		n := float64(g.N)
		g.MeanHuman, g.MeanPredicted, g.MAE = round4(g.sumH/n), round4(g.sumP/n), round4(g.absErr/n)
		qs = append(qs, g.QuestionError)
	}
	sort.SliceStable(qs, func(i, j int) bool { return qs[i].MAE > qs[j].MAE })
	worst := opts.Worst
	if worst <= 0 {
		worst = 10
	}
	rep.WorstQuestions = qs[:min(worst, len(qs))]
	return rep
}

// category is a score's index on the half-point scale: round(2v), within
// 0..k-1.
func category(v float64, k int) int { return clamp(int(math.Round(2*v)), k) }

func num(x float64) *float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return nil
	}
	r := round4(x)
	return &r
}

func round4(x float64) float64 { return math.Round(x*1e4) / 1e4 }

func show(p *float64) string {
	if p == nil {
		return "n/a"
	}
	return strconv.FormatFloat(*p, 'f', 3, 64)
}

// WriteText writes the report for people; source names the data file.
func (rep Report) WriteText(w io.Writer, source string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Calibration of the %s grader on %s\n", rep.Grader, source)
	if len(rep.Models) > 0 {
		fmt.Fprintf(&b, "model: %s\n", strings.Join(rep.Models, ", "))
	}
	fmt.Fprintf(&b, "answers: %d graded (%d from the state file), %d failed, %.2fs\n", rep.N, rep.Resumed, rep.Failed, rep.Seconds)
	for _, f := range rep.Failures {
		fmt.Fprintf(&b, "  failed: line %d: %s\n", f.Line, f.Error)
	}
	if rep.N == 0 {
		_, err := io.WriteString(w, b.String())
		return err
	}
	b.WriteString("Assay's score is mapped onto the human scale as score_max × overall / 100.\n\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Pearson r\t%s\n", show(rep.Pearson))
	fmt.Fprintf(tw, "Spearman rho\t%s\n", show(rep.Spearman))
	fmt.Fprintf(tw, "QWK\t%s\t(%s)\n", show(rep.QWK), QWKScale)
	fmt.Fprintf(tw, "MAE\t%.3f\n", rep.MAE)
	fmt.Fprintf(tw, "RMSE\t%.3f\n", rep.RMSE)
	fmt.Fprintf(tw, "bias\t%+.3f\t(mean Assay %.3f - mean human %.3f)\n", rep.Bias, rep.MeanPredicted, rep.MeanHuman)
	if rep.Fit != nil {
		fmt.Fprintf(tw, "linear fit\thuman ≈ %.3f × Assay %+.3f\t(RMSE %.3f after this rescaling, fitted on the same data)\n",
			rep.Fit.Slope, rep.Fit.Intercept, rep.Fit.RMSE)
	}
	tw.Flush()

	b.WriteString("\nConfusion matrix (rows: human, columns: Assay; " + QWKScale + "):\n")
	tw = tabwriter.NewWriter(&b, 0, 0, 1, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "\t")
	for _, l := range rep.Confusion.Labels {
		fmt.Fprintf(tw, "%s\t", l)
	}
	fmt.Fprintln(tw)
	for i, row := range rep.Confusion.Counts {
		fmt.Fprintf(tw, "%s\t", rep.Confusion.Labels[i])
		for _, c := range row {
			fmt.Fprintf(tw, "%d\t", c)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()

	if len(rep.WorstQuestions) > 0 {
		b.WriteString("\nWorst questions by mean absolute error:\n")
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "MAE\tn\thuman\tAssay\tquestion")
		for _, q := range rep.WorstQuestions {
			label := q.Question
			if q.ID != "" {
				label = q.ID + " " + label
			}
			fmt.Fprintf(tw, "%.2f\t%d\t%.2f\t%.2f\t%s\n", q.MAE, q.N, q.MeanHuman, q.MeanPredicted, truncate(label, 70))
		}
		tw.Flush()
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
