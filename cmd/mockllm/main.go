// Command mockllm is a stand-in for an OpenAI-compatible API, for running
// Assay's LLM grader without a model: it grades deterministically from the
// request itself (the rubric in the prompt and the JSON schema, the answer
// between its tags), embeds by hashing, and can be told to be slow or to
// fail now and then.
//
//	mockllm --addr 127.0.0.1:8090 --latency 100ms --error-rate 0.01 --seed 1
//
// Then point the grader at it: OPENAI_BASE_URL=http://127.0.0.1:8090/v1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "mockllm:", err)
		}
		os.Exit(1)
	}
}

// options are the server's settings.
type options struct {
	addr      string
	latency   time.Duration
	errorRate float64
	seed      uint64
	dims      int
}

func parse(args []string, getenv func(string) string, out io.Writer) (options, error) {
	o := options{addr: "127.0.0.1:8090", dims: 256}
	if v := getenv("MOCKLLM_ADDR"); v != "" {
		o.addr = v
	}
	fs := flag.NewFlagSet("mockllm", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.addr, "addr", o.addr, "listen address, HOST:PORT (env MOCKLLM_ADDR)")
	fs.DurationVar(&o.latency, "latency", 0, "delay before every reply")
	fs.Float64Var(&o.errorRate, "error-rate", 0, "share of requests that fail: 500, or one time in five 429 with Retry-After")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the failure draws")
	fs.IntVar(&o.dims, "dims", o.dims, "length of the embedding vectors (a request's dimensions wins)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case o.errorRate < 0 || o.errorRate > 1:
		return o, errors.New("--error-rate must be between 0 and 1")
	case o.latency < 0:
		return o, errors.New("--latency must not be negative")
	case o.dims < 1:
		return o, errors.New("--dims must be positive")
	}
	return o, nil
}

// run is main without the process, for tests: it serves until ctx ends.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	o, err := parse(args, getenv, stdout)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", o.addr, err)
	}
	srv := &http.Server{Handler: newHandler(o), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "mockllm listening on http://%s/v1 (latency %s, error rate %s, seed %d)\n",
		ln.Addr(), o.latency, strconv.FormatFloat(o.errorRate, 'g', -1, 64), o.seed)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
