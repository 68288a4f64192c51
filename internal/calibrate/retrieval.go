package calibrate

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/assay-dev/assay/internal/evaluation"
)

// RetrievalCase is a question and the rubric it must retrieve; an empty
// RubricID marks an off-topic question that must match nothing.
type RetrievalCase struct {
	Question string `json:"question"`
	RubricID string `json:"rubric_id"`
	// Source is file:line, for reports.
	Source string `json:"-"`
}

// ExpandPaths turns each argument into files: a directory gives its *.jsonl
// files, a pattern with *, ? or [ the files it matches, anything else
// itself. The result is sorted and without duplicates.
func ExpandPaths(args []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	add := func(f string) {
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	for _, a := range args {
		var files []string
		if fi, err := os.Stat(a); err == nil && fi.IsDir() {
			files, _ = filepath.Glob(filepath.Join(a, "*.jsonl"))
			if len(files) == 0 {
				return nil, fmt.Errorf("%s: no *.jsonl files", a)
			}
		} else if strings.ContainsAny(a, "*?[") {
			var err error
			if files, err = filepath.Glob(a); err != nil {
				return nil, fmt.Errorf("%s: %w", a, err)
			}
			if len(files) == 0 {
				return nil, fmt.Errorf("%s: matches no file", a)
			}
		} else {
			files = []string{a}
		}
		for _, f := range files {
			add(f)
		}
	}
	sort.Strings(out)
	return out, nil
}

// ReadRetrievalCases reads JSON Lines files of {"question", "rubric_id"}.
func ReadRetrievalCases(files []string) ([]RetrievalCase, error) {
	var out []RetrievalCase
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		cs, err := readCases(f, name)
		f.Close()
		if err != nil {
			return nil, err
		}
		out = append(out, cs...)
	}
	return out, nil
}

func readCases(r io.Reader, name string) ([]RetrievalCase, error) {
	var out []RetrievalCase
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var c RetrievalCase
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, n, err)
		}
		if strings.TrimSpace(c.Question) == "" {
			return nil, fmt.Errorf("%s:%d: question is empty", name, n)
		}
		c.Source = fmt.Sprintf("%s:%d", name, n)
		out = append(out, c)
	}
	return out, sc.Err()
}

// Searcher finds rubrics by similarity; *evaluation.Service is one.
type Searcher interface {
	Search(ctx context.Context, q string, k int) ([]evaluation.Match, error)
}

// RetrievalReport measures retrieval with the service's embedder and match
// threshold.
type RetrievalReport struct {
	Embedder  string  `json:"embedder"`
	Threshold float64 `json:"threshold"`
	// OnTopic questions expect a rubric. Top1 is how many retrieve it
	// first; Matched, how many of those also reach the threshold, which
	// is what grading by question needs.
	OnTopic         int      `json:"on_topic"`
	Top1            int      `json:"top1"`
	Top1Accuracy    *float64 `json:"top1_accuracy"`
	Matched         int      `json:"matched"`
	MatchedAccuracy *float64 `json:"matched_accuracy"`
	// OffTopic questions expect none; FalseMatches reach the threshold
	// with some rubric anyway.
	OffTopic       int             `json:"off_topic"`
	FalseMatches   int             `json:"false_matches"`
	FalseMatchRate *float64        `json:"false_match_rate"`
	Misses         []RetrievalMiss `json:"misses"`
	False          []RetrievalMiss `json:"false_match_list"`
}

// RetrievalMiss is one question that did not retrieve what it should.
type RetrievalMiss struct {
	Question   string  `json:"question"`
	Source     string  `json:"source"`
	Want       string  `json:"want"`
	Got        string  `json:"got"`
	Similarity float64 `json:"similarity"`
}

// EvalRetrieval searches every case's question and counts hits and false
// matches.
func EvalRetrieval(ctx context.Context, s Searcher, cases []RetrievalCase, threshold float64) (RetrievalReport, error) {
	rep := RetrievalReport{Threshold: threshold, Misses: []RetrievalMiss{}, False: []RetrievalMiss{}}
	for _, c := range cases {
		ms, err := s.Search(ctx, c.Question, 1)
		if err != nil {
			return rep, fmt.Errorf("%s: %w", c.Source, err)
		}
		var got string
		var sim float64
		if len(ms) > 0 {
			got, sim = ms[0].Rubric.ID, ms[0].Similarity
		}
		miss := RetrievalMiss{Question: c.Question, Source: c.Source, Want: c.RubricID, Got: got, Similarity: sim}
		if c.RubricID == "" {
			rep.OffTopic++
			if got != "" && sim >= threshold {
				rep.FalseMatches++
				rep.False = append(rep.False, miss)
			}
			continue
		}
		rep.OnTopic++
		switch {
		case got != c.RubricID:
			rep.Misses = append(rep.Misses, miss)
		case sim >= threshold:
			rep.Top1++
			rep.Matched++
		default:
			rep.Top1++
			rep.Misses = append(rep.Misses, miss) // right rubric, below the threshold
		}
	}
	rep.Top1Accuracy = ratio(rep.Top1, rep.OnTopic)
	rep.MatchedAccuracy = ratio(rep.Matched, rep.OnTopic)
	rep.FalseMatchRate = ratio(rep.FalseMatches, rep.OffTopic)
	return rep, nil
}

func ratio(a, b int) *float64 {
	if b == 0 {
		return nil
	}
	return num(float64(a) / float64(b))
}

// WriteText writes the report for people.
func (rep RetrievalReport) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Retrieval with embedder %s, match threshold %.2f\n", rep.Embedder, rep.Threshold)
	fmt.Fprintf(&b, "top-1 accuracy        %s (%d/%d questions with an expected rubric)\n", pct(rep.Top1Accuracy), rep.Top1, rep.OnTopic)
	fmt.Fprintf(&b, "matched (≥ threshold) %s (%d/%d)\n", pct(rep.MatchedAccuracy), rep.Matched, rep.OnTopic)
	fmt.Fprintf(&b, "off-topic matched     %s (%d/%d off-topic questions wrongly matched)\n", pct(rep.FalseMatchRate), rep.FalseMatches, rep.OffTopic)
	for _, m := range rep.Misses {
		why := "want " + m.Want
		if m.Got == m.Want {
			why = "right rubric, below the threshold"
		}
		fmt.Fprintf(&b, "  miss: %q -> %s %.3f (%s) %s\n", m.Question, orNone(m.Got), m.Similarity, why, m.Source)
	}
	for _, m := range rep.False {
		fmt.Fprintf(&b, "  false match: %q -> %s %.3f %s\n", m.Question, m.Got, m.Similarity, m.Source)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func pct(p *float64) string {
	if p == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.1f%%", math.Round(*p*1000)/10)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
