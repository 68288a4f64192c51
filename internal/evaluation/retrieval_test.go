package evaluation_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/assay-dev/assay/internal/embed"
	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/grader"
	"github.com/assay-dev/assay/internal/memory"
	"github.com/assay-dev/assay/internal/rubric"
	"github.com/assay-dev/assay/rubrics"
)

// The article's questions in its order, with the rubric each must retrieve.
var articleOrder = []string{
	"api-styles", "api-rest-design", "api-versioning", "api-rate-limiting", "api-pagination",
	"db-sql-vs-nosql", "db-indexing", "db-sharding", "db-acid", "db-query-optimization",
	"cache-strategies", "cache-invalidation", "cache-redis-vs-memcached", "arch-monolith-vs-microservices",
	"sec-authn-authz", "arch-saga", "arch-async-processing", "arch-circuit-breaker",
	"sec-web-vulnerabilities", "sec-service-communication",
}

const threshold = 0.20 // the configured default, ASSAY_MATCH_THRESHOLD

func newService(t testing.TB) (*evaluation.Service, []rubric.Rubric) {
	t.Helper()
	return newServiceWith(t, memory.New())
}

// newServiceWith is newService over store, the seed bank synced into it.
func newServiceWith(t testing.TB, store evaluation.Store) (*evaluation.Service, []rubric.Rubric) {
	t.Helper()
	bank, err := rubric.Load(rubrics.FS)
	if err != nil {
		t.Fatal(err)
	}
	svc := evaluation.NewService(store, embed.NewLocalForBank(bank), []evaluation.Grader{grader.Heuristic{}},
		evaluation.Config{MatchThreshold: threshold, MaxAnswerRunes: 10000}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if _, err := svc.SyncRubrics(context.Background(), bank); err != nil {
		t.Fatal(err)
	}
	return svc, bank
}

type retrievalCase struct {
	Question string `json:"question"`
	RubricID string `json:"rubric_id"`
}

func loadRetrievalSet(t testing.TB) (paraphrases, offTopic []retrievalCase) {
	t.Helper()
	files, _ := filepath.Glob("../../testdata/retrieval/*.jsonl")
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == "" {
				continue
			}
			var c retrievalCase
			if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if c.RubricID == "" {
				offTopic = append(offTopic, c)
			} else {
				paraphrases = append(paraphrases, c)
			}
		}
		fh.Close()
	}
	return paraphrases, offTopic
}

func TestArticleQuestionsRetrieveTheirRubric(t *testing.T) {
	svc, bank := newService(t)
	if len(bank) != len(articleOrder) {
		t.Fatalf("bank has %d rubrics, want %d", len(bank), len(articleOrder))
	}
	byID := map[string]rubric.Rubric{}
	for _, r := range bank {
		byID[r.ID] = r
	}
	for _, id := range articleOrder {
		t.Run(id, func(t *testing.T) {
			r, ok := byID[id]
			if !ok {
				t.Fatalf("no rubric %q", id)
			}
			ms, err := svc.Search(context.Background(), r.Question, 3)
			if err != nil {
				t.Fatal(err)
			}
			if got := ms[0].Rubric.ID; got != id {
				t.Errorf("top match for %q = %s, want %s", r.Question, got, id)
			}
		})
	}
}

func TestParaphraseRetrieval(t *testing.T) {
	svc, bank := newService(t)
	paraphrases, offTopic := loadRetrievalSet(t)
	perRubric := map[string]int{}
	for _, c := range paraphrases {
		perRubric[c.RubricID]++
	}
	for _, r := range bank {
		if perRubric[r.ID] < 3 {
			t.Errorf("rubric %s has %d paraphrases, want at least 3", r.ID, perRubric[r.ID])
		}
	}
	hits := 0
	var misses []string
	for _, c := range paraphrases {
		ms, err := svc.Search(context.Background(), c.Question, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) > 0 && ms[0].Rubric.ID == c.RubricID && ms[0].Similarity >= threshold {
			hits++
		} else if len(ms) > 0 {
			misses = append(misses, c.Question+" -> "+ms[0].Rubric.ID+" "+formatSim(ms[0].Similarity)+" (want "+c.RubricID+")")
		}
	}
	sort.Strings(misses)
	acc := float64(hits) / float64(len(paraphrases))
	t.Logf("paraphrase top-1 accuracy %.3f (%d/%d)", acc, hits, len(paraphrases))
	for _, m := range misses {
		t.Log("miss: " + m)
	}
	if acc < 0.90 {
		t.Errorf("paraphrase accuracy %.3f, want >= 0.90", acc)
	}
	if len(offTopic) < 10 {
		t.Fatalf("%d off-topic questions, want at least 10", len(offTopic))
	}
	for _, c := range offTopic {
		ms, err := svc.Search(context.Background(), c.Question, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) > 0 && ms[0].Similarity >= threshold {
			t.Errorf("off-topic %q matched %s at %.3f, want below %.2f", c.Question, ms[0].Rubric.ID, ms[0].Similarity, threshold)
		}
	}
}

func formatSim(f float64) string {
	b, _ := json.Marshal(f)
	return string(b)
}
