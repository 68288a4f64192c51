// Package postgres is the PostgreSQL Store: rubrics and their versions,
// their vectors (pgvector, with HNSW indexes) and evaluations. It behaves
// like internal/memory; the contract suite in internal/storetest runs
// against both.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	pgxvector "github.com/pgvector/pgvector-go/pgx"

	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/fault"
)

// pingTimeout bounds Ping, so a health check answers quickly when the
// database hangs instead of waiting for the caller's deadline.
const pingTimeout = 2 * time.Second

// unavailableMessage is what a client sees when the database is down; the
// cause is logged, never shown.
const unavailableMessage = "the database is unavailable"

// Store is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
	log  *slog.Logger
	// indexed remembers the HNSW indexes known to exist, so PutVectors runs
	// their DDL (which locks the table) only once per model and process.
	indexed sync.Map // index name -> struct{}
	// cache holds rubric bodies and search results (searchcache.go).
	cache *caches
	// batch coalesces the statements every grading runs (batch.go).
	batch *batchers
}

var _ evaluation.Store = (*Store)(nil)

// Open connects to the database at url and checks that it answers; an
// unreachable database gives a fault.Unavailable error. Call Migrate before
// serving. log may be nil.
func Open(ctx context.Context, url string, log *slog.Logger) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The message of a parse error may quote the URL; pgx redacts the
		// password.
		return nil, fmt.Errorf("parsing the database URL: %w", err)
	}
	cfg.AfterConnect = registerVector
	if !strings.Contains(url, "pool_max_conns") {
		// pgx's default, max(4, cores), is too small once River's workers,
		// its leader election and a LISTEN connection share the pool with
		// the HTTP requests; the URL's pool_max_conns still wins.
		cfg.MaxConns = int32(max(16, 4*runtime.GOMAXPROCS(0)))
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, classify("opening the database pool", err)
	}
	s := &Store{pool: pool, log: log, cache: newCaches()}
	s.batch = s.newBatchers()
	if err := s.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// registerVector teaches a new connection the pgvector types. On a database
// not yet migrated the extension does not exist; the connection then works
// without them, and Migrate resets the pool once it has created the
// extension, so later connections register them.
func registerVector(ctx context.Context, conn *pgx.Conn) error {
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT to_regtype('vector') IS NOT NULL").Scan(&exists); err != nil {
		return err
	}
	if !exists {
		return nil
	}
	return pgxvector.RegisterTypes(ctx, conn)
}

// Close closes the connections; it waits for the ones in use.
func (s *Store) Close() { s.pool.Close() }

// Ping implements evaluation.Store.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if err := s.pool.Ping(ctx); err != nil {
		// A failed ping means unavailable whatever the cause.
		return fault.Wrap(fmt.Errorf("pinging the database: %w", err), fault.Unavailable, unavailableMessage)
	}
	return nil
}

// classify wraps err with what was being done, and marks it Unavailable
// when the database could not be reached, so clients get a 503 (retry
// later) rather than a 500.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := fault.As(err); ok {
		return err // already classified, e.g. NotFound from inside a transaction
	}
	err = fmt.Errorf("%s: %w", op, err)
	if unreachable(err) {
		return fault.Wrap(err, fault.Unavailable, unavailableMessage)
	}
	return err
}

// unreachable reports whether err means the database cannot be reached or
// is not accepting work, as opposed to a failed statement.
func unreachable(err error) bool {
	var (
		connectErr *pgconn.ConnectError
		netErr     net.Error
		pgErr      *pgconn.PgError
	)
	switch {
	case errors.As(err, &connectErr), errors.As(err, &netErr):
		return true
	case errors.Is(err, context.DeadlineExceeded), pgconn.Timeout(err):
		// Waiting for a connection or an answer until the deadline: the
		// database is down or overloaded.
		return true
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return true // the connection dropped mid-conversation
	case errors.As(err, &pgErr):
		// Class 08 is connection exceptions; 57P01-03 are shutdown and
		// start-up; 53300 is too many connections.
		return strings.HasPrefix(pgErr.Code, "08") ||
			pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03" ||
			pgErr.Code == "53300"
	}
	return false
}

// SQLSTATE codes the store turns into fault kinds.
const (
	uniqueViolation     = "23505"
	foreignKeyViolation = "23503"
)

func hasCode(err error, code string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code
}

// inTx runs fn in a transaction, committing when it returns nil. A
// transaction left open by an error is rolled back.
func (s *Store) inTx(ctx context.Context, opts pgx.TxOptions, fn func(pgx.Tx) error) error {
	tx, err := s.pool.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	defer func() {
		// After Commit this is a no-op; its error would only repeat fn's.
		_ = tx.Rollback(context.WithoutCancel(ctx))
	}()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

func isNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }
