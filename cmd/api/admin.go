package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/assay-dev/assay/internal/auth"
	"github.com/assay-dev/assay/internal/config"
	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/grader"
	"github.com/assay-dev/assay/internal/postgres"
)

// migrate applies the migrations and exits: for deployments that migrate
// before rolling out (the server also migrates at start-up).
func migrate(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	pg, _, err := adminDB(ctx, args, getenv, stdout)
	if err != nil {
		return err
	}
	defer pg.Close()
	fmt.Fprintln(stdout, "migrations applied")
	return nil
}

// syncRubrics stores the rubric files in PostgreSQL: a changed rubric gets
// a new version, an unchanged one keeps its version.
func syncRubrics(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	pg, cfg, err := adminDB(ctx, args, getenv, stdout)
	if err != nil {
		return err
	}
	defer pg.Close()
	bank, err := loadBank(cfg.RubricsDir)
	if err != nil {
		return err
	}
	embedder, err := newEmbedder(cfg)
	if err != nil {
		return err
	}
	svc := evaluation.NewService(pg, embedder, []evaluation.Grader{grader.Heuristic{}}, evaluation.Config{}, slog.New(slog.DiscardHandler))
	res, err := svc.SyncRubrics(ctx, bank)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "rubrics: %d added, %d new versions, %d unchanged\n", len(res.Added), len(res.Updated), res.Unchanged)
	for _, id := range res.Updated {
		r, err := pg.Rubric(ctx, id)
		if err == nil {
			fmt.Fprintf(stdout, "  %s is now version %d\n", id, r.Version)
		}
	}
	return nil
}

// keysCmd manages API keys: create prints the key once, on its own last
// line; only its hash is stored.
func keysCmd(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: api keys create --name NAME --scopes grade,admin | list | revoke ID")
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("keys "+sub, flag.ContinueOnError)
	fs.SetOutput(stdout)
	name := fs.String("name", "", "who or what the key is for")
	scopes := fs.String("scopes", auth.ScopeGrade, "comma-separated scopes: grade, admin")
	rps := fs.Float64("rate-rps", 0, "this key's requests per second (0: the server default)")
	burst := fs.Int("rate-burst", 0, "this key's burst (0: the server default)")
	dbURL := fs.String("database-url", getenv("DATABASE_URL"), "PostgreSQL URL (env DATABASE_URL)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dbURL == "" {
		return fmt.Errorf("api keys needs DATABASE_URL: keys of the in-memory store would vanish with this command")
	}
	pg, err := postgres.Open(ctx, *dbURL, nil)
	if err != nil {
		return err
	}
	defer pg.Close()
	if err := pg.Migrate(ctx); err != nil {
		return err
	}
	switch sub {
	case "create":
		k, secret, err := auth.Mint(*name, splitList(*scopes), time.Now())
		if err != nil {
			return err
		}
		k.RateRPS, k.RateBurst = *rps, *burst
		if err := pg.CreateKey(ctx, k); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "created key %s (%s) with scopes %s; it is shown once, store it now:\n%s\n", k.ID, k.Name, strings.Join(k.Scopes, ","), secret)
		return nil
	case "list":
		keys, err := pg.ListKeys(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tSCOPES\tCREATED\tREVOKED")
		for _, k := range keys {
			revoked := "-"
			if k.RevokedAt != nil {
				revoked = k.RevokedAt.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, strings.Join(k.Scopes, ","), k.CreatedAt.UTC().Format(time.RFC3339), revoked)
		}
		return tw.Flush()
	case "revoke":
		if fs.NArg() != 1 {
			return fmt.Errorf("usage: api keys revoke ID")
		}
		if err := pg.RevokeKey(ctx, fs.Arg(0), time.Now()); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked key %s\n", fs.Arg(0))
		return nil
	default:
		return fmt.Errorf("unknown keys command %q (want create, list or revoke)", sub)
	}
}

// adminDB opens and migrates the configured database.
func adminDB(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) (*postgres.Store, config.Config, error) {
	cfg, err := config.Load(args, getenv, stdout)
	if err != nil {
		return nil, cfg, err
	}
	if cfg.DatabaseURL == "" {
		return nil, cfg, fmt.Errorf("DATABASE_URL is not set")
	}
	pg, err := openPostgres(ctx, cfg, slog.New(slog.DiscardHandler))
	return pg, cfg, err
}
