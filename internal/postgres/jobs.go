package postgres

import (
	"context"
	"log/slog"

	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// migrateRiver applies River's migrations (its job tables) while the
// caller holds the migration lock, so replicas starting together create
// River's schema once, as they do ours. They run on pooled connections,
// each in its own transaction: one of them adds an enum value that a
// later one uses, which PostgreSQL refuses within one transaction.
func (s *Store) migrateRiver(ctx context.Context) error {
	m, err := rivermigrate.New(riverpgxv5.New(s.pool), &rivermigrate.Config{Logger: warnOnly(s.log)})
	if err != nil {
		return err
	}
	res, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err == nil && len(res.Versions) > 0 {
		s.log.Info("River migrated", "applied", len(res.Versions))
	}
	return err
}

// warnOnly keeps River's routine info lines out of Assay's log.
func warnOnly(log *slog.Logger) *slog.Logger {
	return slog.New(minLevel{log.Handler(), slog.LevelWarn})
}

type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(as), h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.Handler.WithGroup(name), h.min}
}
