package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/assay-dev/assay/internal/rubric"
	"github.com/assay-dev/assay/rubrics"
)

func rubricsCmd(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: api rubrics lint [DIR] | api rubrics sync")
	}
	switch args[0] {
	case "sync":
		return syncRubrics(ctx, args[1:], getenv, stdout)
	case "lint":
		if len(args) > 2 {
			return fmt.Errorf("usage: api rubrics lint [DIR]")
		}
		dir := getenv("ASSAY_RUBRICS_DIR")
		if len(args) == 2 {
			dir = args[1]
		}
		return lint(dir, stdout)
	default:
		return fmt.Errorf("unknown rubrics command %q (want lint or sync)", args[0])
	}
}

func lint(dir string, stdout io.Writer) error {
	var fsys fs.FS = rubrics.FS
	if dir != "" {
		if _, err := os.Stat(dir); err != nil {
			return err
		}
		fsys = os.DirFS(dir)
	}
	rs, problems := rubric.LoadAll(fsys)
	for _, p := range problems {
		fmt.Fprintln(stdout, p.String())
	}
	if len(problems) > 0 {
		return fmt.Errorf("%d problems in %s", len(problems), orEmbedded(dir))
	}
	fmt.Fprintf(stdout, "ok: %d rubrics in %s\n", len(rs), orEmbedded(dir))
	return nil
}
