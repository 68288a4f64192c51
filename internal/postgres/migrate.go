package postgres

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/assay-dev/assay/migrations"
)

// Advisory lock keys. They are arbitrary but fixed: every replica must use
// the same ones. The values spell "assaymig", "assayrub" and "assayidx" in
// ASCII.
const (
	migrateLockKey int64 = 0x61737361796d6967
	rubricLockKey  int64 = 0x6173736179727562
	indexLockKey   int64 = 0x6173736179696478
)

// migration is one numbered SQL file.
type migration struct {
	version int
	name    string
	sql     string
}

// Migrate applies the migrations not yet recorded in schema_migrations, in
// order, each in its own transaction. It holds a session advisory lock on
// one connection meanwhile, so replicas starting together migrate once: the
// others wait, then find nothing left to do. Call it at start-up, before
// serving: it ends with renewing the pool's connections.
func (s *Store) Migrate(ctx context.Context) error {
	ms, err := readMigrations(migrations.FS)
	if err != nil {
		return err
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return classify("migrating", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrateLockKey); err != nil {
		return classify("taking the migration lock", err)
	}
	defer func() {
		_, err := conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrateLockKey)
		if err != nil {
			// A connection back in the pool must not keep the lock: closing
			// it ends the session, which releases the lock.
			_ = conn.Conn().Close(context.WithoutCancel(ctx))
		}
	}()

	applied, err := appliedVersions(ctx, conn.Conn())
	if err != nil {
		return classify("reading schema_migrations", err)
	}
	n := 0
	for _, m := range ms {
		if applied[m.version] {
			continue
		}
		err := pgx.BeginFunc(ctx, conn.Conn(), func(tx pgx.Tx) error {
			// No arguments: pgx sends the file with the simple protocol,
			// which runs several statements.
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name)
			return err
		})
		if err != nil {
			return classify("applying migration "+m.name, err)
		}
		s.log.Debug("migration applied", "migration", m.name)
		n++
	}
	if n > 0 {
		s.log.Info("database migrated", "applied", n)
	}
	if err := s.migrateRiver(ctx); err != nil {
		return classify("applying River's migrations", err)
	}
	// Connections opened before the vector extension existed (by this
	// replica or, racing, by another) lack its types: replace them all.
	// Migrate runs once at start-up, so this costs a few reconnections.
	s.pool.Reset()
	return nil
}

// appliedVersions creates schema_migrations if needed and returns the
// versions it records. The caller holds the migration lock, so creating
// the table cannot race.
func appliedVersions(ctx context.Context, conn *pgx.Conn) (map[int]bool, error) {
	const create = `
		CREATE TABLE IF NOT EXISTS schema_migrations (
			version    int PRIMARY KEY,
			name       text NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`
	if _, err := conn.Exec(ctx, create); err != nil {
		return nil, err
	}
	rows, err := conn.Query(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return nil, err
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return nil, err
	}
	applied := map[int]bool{}
	for _, v := range versions {
		applied[v] = true
	}
	return applied, nil
}

// readMigrations returns the *.sql files of fsys ordered by the number
// their names start with (NNNN_description.sql).
func readMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	seen := map[int]string{}
	for _, name := range names {
		num, _, ok := strings.Cut(path.Base(name), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a positive number and '_'", name)
		}
		if other, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %s and %s have the same number", other, name)
		}
		seen[v] = name
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	return ms, nil
}
