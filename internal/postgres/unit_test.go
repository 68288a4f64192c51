package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/fault"
)

// These tests need no database.

func TestQuoteLiteral(t *testing.T) {
	tests := []struct{ in, want string }{
		{"local-v1-abc", `'local-v1-abc'`},
		{"o'brien", `'o''brien'`},
		{"x'); DROP TABLE rubrics; --", `'x''); DROP TABLE rubrics; --'`},
		{`back\slash`, `E'back\\slash'`},
		{`\'`, `E'\\'''`},
		{"名前", `'名前'`},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := quoteLiteral(tc.in); got != tc.want {
				t.Errorf("quoteLiteral(%q): got %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}

func TestCheckModel(t *testing.T) {
	long := make([]byte, maxModelLen+1)
	for i := range long {
		long[i] = 'm'
	}
	tests := []struct {
		model string
		ok    bool
	}{
		{"text-embedding-3-small", true},
		{"o'brien \\ \"x\"", true},
		{"", false},
		{"nul\x00byte", false},
		{"new\nline", false},
		{"bad\xffutf8", false},
		{string(long), false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%q", tc.model), func(t *testing.T) {
			if err := checkModel(tc.model); (err == nil) != tc.ok {
				t.Errorf("checkModel(%q): got %v, want ok %v", tc.model, err, tc.ok)
			}
		})
	}
}

func TestIndexName(t *testing.T) {
	valid := regexp.MustCompile(`^rubric_embeddings_hnsw_[0-9a-f]{16}$`)
	seen := map[string]string{}
	for _, tc := range []struct {
		model string
		dims  int
	}{{"m", 3}, {"m", 8}, {"m2", 3}, {"x'); DROP TABLE t; --", 1024}} {
		name := indexName(tc.model, tc.dims)
		if !valid.MatchString(name) {
			t.Errorf("indexName(%q, %d) = %q, want a short identifier", tc.model, tc.dims, name)
		}
		if other, dup := seen[name]; dup {
			t.Errorf("indexName(%q, %d) = %q, same as for %s", tc.model, tc.dims, name, other)
		}
		seen[name] = fmt.Sprint(tc.model, tc.dims)
		if again := indexName(tc.model, tc.dims); again != name {
			t.Errorf("indexName is not stable: got %q then %q", name, again)
		}
	}
}

func TestSearchLimits(t *testing.T) {
	tests := []struct{ k, fetch, ef int }{
		{1, 8, 200},
		{5, 40, 200},
		{20, 160, 200},
		{30, 240, 240},
		{124, 992, 992},
		{125, 1000, 1000},
		{1 << 40, 1000, 1000},
	}
	for _, tc := range tests {
		fetch, ef := searchLimits(tc.k)
		if fetch != tc.fetch || ef != tc.ef {
			t.Errorf("searchLimits(%d): got %d, %d; want %d, %d", tc.k, fetch, ef, tc.fetch, tc.ef)
		}
	}
}

func TestReadMigrations(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	tests := []struct {
		name    string
		fs      fstest.MapFS
		want    []string // names in order
		wantErr bool
	}{
		{"numeric order", fstest.MapFS{"0010_c.sql": file("c"), "0002_b.sql": file("b"), "0001_a.sql": file("a"), "embed.go": file("")},
			[]string{"0001_a.sql", "0002_b.sql", "0010_c.sql"}, false},
		{"duplicate number", fstest.MapFS{"0001_a.sql": file("a"), "1_b.sql": file("b")}, nil, true},
		{"no number", fstest.MapFS{"init.sql": file("a")}, nil, true},
		{"zero", fstest.MapFS{"0000_a.sql": file("a")}, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ms, err := readMigrations(tc.fs)
			if (err != nil) != tc.wantErr {
				t.Fatalf("got error %v, want error %v", err, tc.wantErr)
			}
			var got []string
			for _, m := range ms {
				got = append(got, m.name)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	notFound := evaluation.NotFound("rubric", "x")
	tests := []struct {
		name string
		err  error
		want fault.Kind
	}{
		{"deadline", fmt.Errorf("acquire: %w", context.DeadlineExceeded), fault.Unavailable},
		{"network", &net.OpError{Op: "dial", Err: errors.New("refused")}, fault.Unavailable},
		{"dropped connection", io.ErrUnexpectedEOF, fault.Unavailable},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, fault.Unavailable},
		{"connection exception", &pgconn.PgError{Code: "08006"}, fault.Unavailable},
		{"too many connections", &pgconn.PgError{Code: "53300"}, fault.Unavailable},
		{"failed statement", &pgconn.PgError{Code: "42601"}, fault.Internal},
		{"canceled by the caller", context.Canceled, fault.Internal},
		{"already classified", notFound, fault.NotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := classify("doing", tc.err)
			if got := fault.KindOf(err); got != tc.want {
				t.Errorf("classify(%v): got kind %v, want %v", tc.err, got, tc.want)
			}
			if !errors.Is(err, tc.err) {
				t.Errorf("classify(%v) = %v, which does not wrap the cause", tc.err, err)
			}
		})
	}
	if err := classify("doing", nil); err != nil {
		t.Errorf("classify(nil): got %v, want nil", err)
	}
}
