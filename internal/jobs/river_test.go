package jobs

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/postgres"
	"github.com/assay-dev/assay/internal/postgres/pgtest"
)

// newRiver returns a River queue on a migrated schema of its own, stopped
// when the test ends.
func newRiver(t *testing.T, r Runner, cfg Config) (*River, *postgres.Store) {
	t.Helper()
	pgtest.URL(t)
	store, err := postgres.Open(t.Context(), pgtest.NewSchema(t), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	if err := store.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	q, err := NewRiver(store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Start(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := q.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return q, store
}

func count(t *testing.T, store *postgres.Store, sql string) int {
	t.Helper()
	var n int
	if err := store.Pool().QueryRow(t.Context(), sql).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRiverEnqueueIsAtomic: a row never exists without its job, nor a job
// without its row.
func TestRiverEnqueueIsAtomic(t *testing.T) {
	q, store := newRiver(t, newFakeRunner(), Config{Workers: 0})
	boom := errors.New("boom")
	err := store.CreateQueuedTx(t.Context(), nil, []evaluation.Evaluation{job(1).Evaluation}, func(ctx context.Context, tx pgx.Tx) error {
		if _, err := q.client.InsertTx(ctx, tx, gradeArgs{EvaluationID: job(1).Evaluation.ID}, nil); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("CreateQueuedTx = %v, want boom", err)
	}
	if n := count(t, store, "SELECT count(*) FROM evaluations") + count(t, store, "SELECT count(*) FROM river_job"); n != 0 {
		t.Errorf("%d rows and jobs left by a failed enqueue, want 0", n)
	}
	if err := q.Enqueue(t.Context(), nil, []evaluation.Job{job(1), job(2)}); err != nil {
		t.Fatal(err)
	}
	if rows, jobs := count(t, store, "SELECT count(*) FROM evaluations"), count(t, store, "SELECT count(*) FROM river_job"); rows != 2 || jobs != 2 {
		t.Errorf("after Enqueue: %d rows and %d jobs, want 2 and 2", rows, jobs)
	}
	if d, err := q.Depth(t.Context()); err != nil || d != 2 {
		t.Errorf("Depth = %d, %v; want 2 (no workers here)", d, err)
	}
	for range 2 {
		if err := q.EnqueueCallback(t.Context(), job(1).Evaluation.ID); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(t, store, "SELECT count(*) FROM river_job WHERE kind = '"+KindCallback+"'"); n != 1 {
		t.Errorf("%d callback jobs for one evaluation, want 1", n)
	}
}

func TestRiverWorksEachJobOnce(t *testing.T) {
	r := newFakeRunner()
	var jobs []evaluation.Job
	for i := range 40 {
		jobs = append(jobs, job(i))
	}
	flaky, bad := jobs[3].Evaluation.ID, jobs[7].Evaluation.ID
	r.script[flaky] = []error{unavailable, unavailable}
	r.script[bad] = []error{unavailable, unavailable, unavailable, unavailable}
	q, _ := newRiver(t, r, Config{Workers: 4, GradeAttempts: 3, RetryBase: 10 * time.Millisecond})
	if err := q.Enqueue(t.Context(), nil, jobs); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		d, err := q.Depth(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if d == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d jobs still queued after 30s", d)
		}
		time.Sleep(50 * time.Millisecond)
	}
	graded, failed := r.snapshot()
	for _, j := range jobs {
		want := 1
		switch j.Evaluation.ID {
		case flaky, bad:
			want = 3
		}
		if graded[j.Evaluation.ID] != want {
			t.Errorf("%s graded %d times, want %d", j.Evaluation.ID, graded[j.Evaluation.ID], want)
		}
	}
	if len(failed) != 1 || failed[bad] == nil {
		t.Errorf("failed = %v, want only %s", failed, bad)
	}
}
