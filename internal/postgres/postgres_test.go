package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/fault"
	"github.com/assay-dev/assay/internal/postgres/pgtest"
	"github.com/assay-dev/assay/internal/ratelimit"
	"github.com/assay-dev/assay/internal/rubric"
	"github.com/assay-dev/assay/internal/storetest"
	"github.com/assay-dev/assay/migrations"
)

var quiet = slog.New(slog.DiscardHandler)

func testURL(t *testing.T) string     { return pgtest.URL(t) }
func newDatabase(t *testing.T) string { return pgtest.NewDatabase(t) }
func newSchema(t *testing.T) string   { return pgtest.NewSchema(t) }
func adminExec(ctx context.Context, sql string) error {
	return pgtest.Exec(ctx, os.Getenv("TEST_DATABASE_URL"), sql)
}

// open opens a store on the database at url, closed when the test ends.
func open(t *testing.T, url string) *Store {
	t.Helper()
	s, err := Open(t.Context(), url, quiet)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// newStore returns a migrated store in a schema of its own.
func newStore(t *testing.T) *Store {
	t.Helper()
	s := open(t, newSchema(t))
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

func TestStoreContract(t *testing.T) {
	testURL(t)
	storetest.Run(t, func(t *testing.T) evaluation.Store { return newStore(t) })
}

// appliedMigrations returns the versions schema_migrations records.
func appliedMigrations(t *testing.T, s *Store) []int {
	t.Helper()
	rows, err := s.pool.Query(t.Context(), "SELECT version FROM schema_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	vs, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

func wantMigrations(t *testing.T) []int {
	t.Helper()
	ms, err := readMigrations(migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	var vs []int
	for _, m := range ms {
		vs = append(vs, m.version)
	}
	return vs
}

func sameInts(t *testing.T, what string, got, want []int) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: got %v, want %v", what, got, want)
		}
	}
}

func TestMigrateTwiceIsANoOp(t *testing.T) {
	s := newStore(t)
	r := rubric.Rubric{ID: "a", Version: 1, Title: "A"}
	if _, err := s.SyncRubrics(t.Context(), []rubric.Rubric{r}); err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("second Migrate: got %v, want nil", err)
	}
	sameInts(t, "schema_migrations", appliedMigrations(t, s), wantMigrations(t))
	if _, err := s.Rubric(t.Context(), "a"); err != nil {
		t.Errorf("Rubric after the second Migrate: got %v, want the rubric", err)
	}
}

// TestMigrateConcurrently starts two replicas on a new database at once:
// both succeed, the migrations run once, and both can then use vectors
// (their connections predate the extension, so they must be renewed).
func TestMigrateConcurrently(t *testing.T) {
	url := newDatabase(t)
	stores := []*Store{open(t, url), open(t, url)}
	errs := make([]error, len(stores))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, s := range stores {
		wg.Go(func() {
			<-start
			errs[i] = s.Migrate(t.Context())
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Migrate of replica %d: %v", i, err)
		}
	}
	sameInts(t, "schema_migrations", appliedMigrations(t, stores[0]), wantMigrations(t))

	if _, err := stores[0].SyncRubrics(t.Context(), []rubric.Rubric{{ID: "a", Version: 1}}); err != nil {
		t.Fatal(err)
	}
	for i, s := range stores {
		vs := []evaluation.RubricVector{{RubricID: "a", Version: 1, Model: "m", Vector: []float32{1, 0, 0}}}
		if err := s.PutVectors(t.Context(), vs); err != nil {
			t.Fatalf("PutVectors on replica %d: %v", i, err)
		}
		ms, err := s.SearchRubrics(t.Context(), "m", []float32{1, 0, 0}, 1)
		if err != nil || len(ms) != 1 {
			t.Fatalf("SearchRubrics on replica %d: got %v, %v; want one match", i, ms, err)
		}
	}
}

// TestSyncConcurrently has two replicas sync the same changed rubric at
// once, round after round: each round makes exactly one new version.
func TestSyncConcurrently(t *testing.T) {
	a := newStore(t)
	b := open(t, a.pool.Config().ConnString())
	if _, err := a.SyncRubrics(t.Context(), []rubric.Rubric{{ID: "r", Version: 1, Title: "round 0"}}); err != nil {
		t.Fatal(err)
	}
	const rounds = 10
	for round := 1; round <= rounds; round++ {
		changed := []rubric.Rubric{{ID: "r", Version: 1, Title: fmt.Sprint("round ", round)}}
		results := make([]evaluation.SyncResult, 2)
		errs := make([]error, 2)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, s := range []*Store{a, b} {
			wg.Go(func() {
				<-start
				results[i], errs[i] = s.SyncRubrics(t.Context(), changed)
			})
		}
		close(start)
		wg.Wait()
		updated := 0
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: SyncRubrics of replica %d: %v", round, i, err)
			}
			updated += len(results[i].Updated)
		}
		if updated != 1 {
			t.Fatalf("round %d: got %d updates (%+v), want exactly 1", round, updated, results)
		}
	}
	r, err := a.Rubric(t.Context(), "r")
	if err != nil || r.Version != 1+rounds {
		t.Fatalf("Rubric: got version %d (%v), want %d", r.Version, err, 1+rounds)
	}
	var n int
	if err := a.pool.QueryRow(t.Context(), "SELECT count(*) FROM rubric_versions").Scan(&n); err != nil || n != 1+rounds {
		t.Fatalf("rubric_versions: got %d rows (%v), want %d", n, err, 1+rounds)
	}
}

func TestOpenUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	// Port 1 on loopback refuses connections: nothing listens there.
	_, err := Open(ctx, "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2", quiet)
	if got := fault.KindOf(err); got != fault.Unavailable {
		t.Fatalf("Open: got kind %v (%v), want %v", got, err, fault.Unavailable)
	}
	if fe, _ := fault.As(err); fe == nil || fe.Message != unavailableMessage {
		t.Errorf("Open: got message %v, want %q", fe, unavailableMessage)
	}
}

// TestUnavailableAfterOpen: once the database is gone, calls fail as
// Unavailable, not as internal errors.
func TestUnavailableAfterOpen(t *testing.T) {
	s := open(t, newDatabase(t))
	name := s.pool.Config().ConnConfig.Database
	if err := adminExec(t.Context(), "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		t.Fatal(err)
	}
	if got := fault.KindOf(s.Ping(t.Context())); got != fault.Unavailable {
		t.Errorf("Ping: got kind %v, want %v", got, fault.Unavailable)
	}
	_, err := s.Evaluation(t.Context(), "00000000-0000-4000-8000-000000000001")
	if got := fault.KindOf(err); got != fault.Unavailable {
		t.Errorf("Evaluation: got kind %v (%v), want %v", got, err, fault.Unavailable)
	}
}

// TestLargeValuesStorage checks migration 0004: lz4 for the large values
// written per grading (when the server has lz4, as the test cluster does)
// and vectors kept in their rows.
func TestLargeValuesStorage(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	lz4 := true
	if _, err := s.pool.Exec(ctx, "SET default_toast_compression = lz4"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the CI cluster has no lz4: %v", err)
		}
		lz4 = false
	}
	wantCompression := "p"
	if lz4 {
		wantCompression = "l"
	}
	for _, tc := range []struct {
		table, column, compression, storage string
	}{
		{"evaluations", "body", wantCompression, "x"},
		{"idempotency_keys", "body", wantCompression, "x"},
		{"rubric_embeddings", "embedding", wantCompression, "m"},
	} {
		t.Run(tc.table+"."+tc.column, func(t *testing.T) {
			var compression, storage string
			err := s.pool.QueryRow(ctx, `
				SELECT coalesce(nullif(attcompression, ''), 'p')::text, attstorage::text
				FROM pg_attribute WHERE attrelid = $1::regclass AND attname = $2`,
				tc.table, tc.column).Scan(&compression, &storage)
			if err != nil {
				t.Fatal(err)
			}
			if compression != tc.compression || storage != tc.storage {
				t.Errorf("compression %q, storage %q; want %q, %q", compression, storage, tc.compression, tc.storage)
			}
		})
	}
}

// TestTakeN checks the rate-limit statement against ratelimit.Take, the
// algorithm's one definition, taken one by one.
func TestTakeN(t *testing.T) {
	s := newStore(t)
	l := ratelimit.Limit{RPS: 0.001, Burst: 5} // no refill worth a token during the test
	for i, tc := range []struct {
		n, wantGranted int
		wantTokens     float64
	}{
		{3, 3, 2}, // a new bucket starts full
		{1, 1, 1},
		{4, 1, 0}, // one left for four
		{2, 0, 0},
	} {
		granted, tokens, err := s.TakeN(t.Context(), "key:t", l, tc.n)
		if err != nil {
			t.Fatal(err)
		}
		if granted != tc.wantGranted || math.Abs(tokens-tc.wantTokens) > 0.01 {
			t.Errorf("take %d of %d: granted %d with %.3f left, want %d with %.0f", i, tc.n, granted, tokens, tc.wantGranted, tc.wantTokens)
		}
	}
	d, err := s.Take(t.Context(), "key:other", ratelimit.Limit{RPS: 1, Burst: 1})
	if err != nil || !d.Allowed || d.Remaining != 0 {
		t.Errorf("Take on a new bucket of 1: %+v, %v; want allowed with 0 remaining", d, err)
	}
}
