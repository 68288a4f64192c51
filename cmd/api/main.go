// Command api is the Assay server and its tools: `api` (or `api serve`)
// serves the HTTP API; `api rubrics lint` checks rubric files.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if limit := memoryLimitFor(os.DirFS("/"), os.Getenv); limit > 0 {
		debug.SetMemoryLimit(limit)
	}
	if err := runWith(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "api:", err)
		os.Exit(1)
	}
}

const usage = `Assay grades written answers to technical questions against rubrics.

Usage:
  api [serve] [flags]        serve the HTTP API (flags: api serve -h)
  api grade [flags] < FILE   grade an answer from the terminal, in process or with --server URL (api grade -h)
  api rubrics lint [DIR]     check rubric files (default: the embedded bank)
  api rubrics sync           store the rubric files in PostgreSQL (new versions for changed ones)
  api migrate                apply the database migrations (the server also does at start-up)
  api keys create --name NAME --scopes grade,admin
  api keys list | api keys revoke ID
  api calibrate [flags]      grade human-graded answers and report the agreement (api calibrate -h)
  api eval-retrieval [flags] measure rubric retrieval on labelled questions (api eval-retrieval -h)
  api help                   show this help
`

// run is main without the process: it takes everything from its arguments,
// so tests can call it. Only `api grade` reads stdin; run gives it none.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	return runWith(ctx, args, getenv, strings.NewReader(""), stdout)
}

// runWith is run with the standard input that `api grade` reads answers
// from.
func runWith(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, args, getenv, stdout)
	case "grade":
		return gradeCmd(ctx, args, getenv, stdin, stdout)
	case "rubrics":
		return rubricsCmd(ctx, args, getenv, stdout)
	case "migrate":
		return migrate(ctx, args, getenv, stdout)
	case "keys":
		return keysCmd(ctx, args, getenv, stdout)
	case "calibrate":
		return calibrateCmd(ctx, args, getenv, stdout)
	case "eval-retrieval":
		return evalRetrievalCmd(ctx, args, getenv, stdout)
	case "help":
		_, err := io.WriteString(stdout, usage)
		return err
	default:
		return fmt.Errorf("unknown command %q\n\n%s", cmd, usage)
	}
}

// commandFlags is the flag set of a subcommand: errors and -h go to stdout,
// with the command's usage text before the flags.
func commandFlags(name, usage string, stdout io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.Usage = func() {
		fmt.Fprint(stdout, usage)
		fs.PrintDefaults()
	}
	return fs
}
