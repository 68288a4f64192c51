package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/assay-dev/assay/internal/postgres/pgtest"
)

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if v != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("GET %s: %v in %s", url, err, b)
		}
	}
	return resp.StatusCode
}

func postJSON(t *testing.T, url, body string, v any) int {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if v != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("POST %s: %v in %s", url, err, b)
		}
	}
	return resp.StatusCode
}

// TestEditingARubricMakesOneVersion copies the bank, grades an answer,
// edits one rubric file and syncs twice: exactly one new version appears,
// and the old evaluation still shows the version it was graded with.
func TestEditingARubricMakesOneVersion(t *testing.T) {
	db := pgtest.NewDatabase(t)
	dir := t.TempDir()
	files, _ := filepath.Glob("../../rubrics/*.yaml")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	vars := map[string]string{"DATABASE_URL": db, "ASSAY_RUBRICS_DIR": dir}
	sync := func() string {
		var out bytes.Buffer
		if err := run(context.Background(), []string{"rubrics", "sync"}, env(vars), &out); err != nil {
			t.Fatalf("rubrics sync: %v\n%s", err, out.String())
		}
		return out.String()
	}
	if out := sync(); !strings.Contains(out, "20 added, 0 new versions") {
		t.Fatalf("first sync: %q, want 20 added", out)
	}
	base, _ := startServer(t, vars)
	var e struct {
		ID     string
		Rubric struct {
			ID      string
			Version int
		}
	}
	if code := postJSON(t, base+"/v1/evaluations", `{"rubric_id":"db-acid","answer":"Atomicity means all or nothing: a transaction commits fully or rolls back."}`, &e); code != 201 {
		t.Fatalf("grading: %d", code)
	}

	path := filepath.Join(dir, "db-acid.yaml")
	b, _ := os.ReadFile(path)
	edited := strings.Replace(string(b), "title: ", "title: Edited ", 1)
	if err := os.WriteFile(path, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := sync(); !strings.Contains(out, "0 added, 1 new versions, 19 unchanged") || !strings.Contains(out, "db-acid is now version 2") {
		t.Fatalf("sync after edit: %q, want exactly db-acid at version 2", out)
	}
	if out := sync(); !strings.Contains(out, "0 added, 0 new versions, 20 unchanged") {
		t.Fatalf("second sync: %q, want nothing new", out)
	}

	var latest, old struct {
		Version int
		Title   string
	}
	getJSON(t, base+"/v1/rubrics/db-acid", &latest)
	getJSON(t, fmt.Sprintf("%s/v1/rubrics/db-acid?version=%d", base, e.Rubric.Version), &old)
	if latest.Version != 2 || !strings.HasPrefix(latest.Title, "Edited ") {
		t.Errorf("latest = %+v, want version 2 with the edited title", latest)
	}
	if e.Rubric.Version != 1 || old.Version != 1 || strings.HasPrefix(old.Title, "Edited ") {
		t.Errorf("graded with version %d, which reads %+v; want version 1 with the old title", e.Rubric.Version, old)
	}
	var again struct{ Rubric struct{ Version int } }
	getJSON(t, base+"/v1/evaluations/"+e.ID, &again)
	if again.Rubric.Version != 1 {
		t.Errorf("stored evaluation now says version %d, want 1", again.Rubric.Version)
	}
}

// TestListPagesWhileInserting pages through 1,000 stored evaluations over
// HTTP while new ones are inserted: every original appears exactly once.
func TestListPagesWhileInserting(t *testing.T) {
	db := pgtest.NewDatabase(t)
	base, _ := startServer(t, map[string]string{"DATABASE_URL": db, "ASSAY_RATE_LIMIT_RPS": "100000", "ASSAY_RATE_LIMIT_BURST": "100000"})
	const n = 1000
	originals := map[string]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	work := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				var e struct{ ID string }
				body := fmt.Sprintf(`{"rubric_id":"db-acid","answer":"Answer %d: atomicity is all or nothing.","candidate_ref":"page"}`, i)
				if code := postJSON(t, base+"/v1/evaluations", body, &e); code != 201 {
					t.Errorf("insert %d: %d", i, code)
					return
				}
				mu.Lock()
				originals[e.ID] = true
				mu.Unlock()
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()

	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // newer evaluations arrive while we page
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			postJSON(t, base+"/v1/evaluations", fmt.Sprintf(`{"rubric_id":"db-acid","answer":"Late %d: durability.","candidate_ref":"page"}`, i), nil)
		}
	}()
	seen := map[string]int{}
	cursor := ""
	for pages := 0; pages < 200; pages++ {
		var page struct {
			Items []struct {
				ID string
			}
			NextCursor string `json:"next_cursor"`
		}
		url := base + "/v1/evaluations?candidate_ref=page&limit=37"
		if cursor != "" {
			url += "&cursor=" + cursor
		}
		if code := getJSON(t, url, &page); code != 200 {
			t.Fatalf("GET %s: %d", url, code)
		}
		for _, it := range page.Items {
			seen[it.ID]++
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	close(stop)
	<-done
	for id := range originals {
		if seen[id] != 1 {
			t.Errorf("evaluation %s listed %d times, want once", id, seen[id])
		}
	}
	for id, c := range seen {
		if c > 1 {
			t.Errorf("evaluation %s listed %d times", id, c)
		}
	}
	if len(originals) != n {
		t.Fatalf("inserted %d, want %d", len(originals), n)
	}
}
