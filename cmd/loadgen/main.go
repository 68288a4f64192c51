// Command loadgen drives load at Assay (or, for a reference, straight at
// the mock LLM) from a process of its own, and prints what it measured as
// JSON: throughput, latency percentiles, errors, and the CPU time and peak
// memory of the processes it was told to watch.
//
//	loadgen -url http://127.0.0.1:8080 -c 200 -d 20s -warmup 3s -scenario llm -watch server=PID
//
// A fixed number of clients each send one request after another (a closed
// loop) for a duration (-d, after -warmup) or until -n requests are sent.
// Every request carries a distinct answer, so Assay's evaluation cache never
// hits, except in the cache scenario, which first grades a small set of
// answers once and then sends only those again.
//
// Targets and scenarios:
//
//	-target assay -scenario llm        POST /v1/evaluations, default grader (the LLM)
//	-target assay -scenario heuristic  the same with "grader":"heuristic"
//	-target assay -scenario cache      identical requests, answered from the cache
//	-target mock                       POST /v1/chat/completions at the mock, the
//	                                   prompt Assay would send (the reference)
//	-target mock-models                GET /v1/models at the mock: a bare HTTP round
//	                                   trip, the floor of any Go JSON service here
//
// Two helpers for scripts/bench.sh: `loadgen summary FILE.json...` prints a
// line per result, and `loadgen report -dir DIR -o docs/performance.md`
// writes the figures of a bench.sh run into the report between its markers.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type options struct {
	url         string
	target      string
	scenario    string
	clients     int
	duration    time.Duration
	warmup      time.Duration
	count       int
	ramp        time.Duration
	timeout     time.Duration
	answersDir  string
	rubricsDir  string
	promptFile  string
	cacheSet    int
	label       string
	out         string
	watch       []watchSpec
	resetHWM    bool
	sampleEvery time.Duration
}

type watchSpec struct {
	name string
	pid  int
	tree bool // the process and all its descendants (PostgreSQL's backends)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
		}
		os.Exit(1)
	}
}

func parse(args []string, out io.Writer) (options, error) {
	o := options{}
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.url, "url", "http://127.0.0.1:8080", "base URL: Assay's, or the mock's including /v1")
	fs.StringVar(&o.target, "target", "assay", "assay, mock (chat completions) or mock-models (GET /v1/models)")
	fs.StringVar(&o.scenario, "scenario", "llm", "with -target assay: llm, heuristic or cache")
	fs.IntVar(&o.clients, "c", 200, "concurrent clients")
	fs.DurationVar(&o.duration, "d", 20*time.Second, "measured duration (ignored with -n)")
	fs.DurationVar(&o.warmup, "warmup", 3*time.Second, "load before the measurement, not recorded (ignored with -n)")
	fs.IntVar(&o.count, "n", 0, "send exactly this many requests instead of running for -d; all are recorded")
	fs.DurationVar(&o.ramp, "ramp", 0, "start the clients evenly over this time instead of all at once")
	fs.DurationVar(&o.timeout, "timeout", 60*time.Second, "timeout of one request")
	fs.StringVar(&o.answersDir, "answers", "internal/grader/testdata/answers", "folder of answer files (rubric, strong, partial, wrong)")
	fs.StringVar(&o.rubricsDir, "rubrics", "rubrics", "folder of rubric files, for the questions")
	fs.StringVar(&o.promptFile, "prompt", "internal/grader/testdata/golden/prompt_api-rate-limiting.golden",
		"with -target mock: a rendered prompt (=== system === / === user ===) whose system part is sent")
	fs.IntVar(&o.cacheSet, "cache-set", 60, "scenario cache: how many distinct answers are graded once, then repeated")
	fs.StringVar(&o.label, "label", "", "free text copied into the report")
	fs.StringVar(&o.out, "o", "", "also write the JSON report to this file")
	fs.BoolVar(&o.resetHWM, "reset-hwm", true, "reset the watched processes' peak RSS (VmHWM) when the measurement starts (needs write access to /proc/PID/clear_refs)")
	fs.DurationVar(&o.sampleEvery, "sample", 100*time.Millisecond, "how often to sample the watched processes' RSS")
	fs.Func("watch", "NAME=PID: report the CPU time and peak RSS of this process (repeatable)", func(v string) error {
		w, err := parseWatch(v, false)
		o.watch = append(o.watch, w)
		return err
	})
	fs.Func("watch-tree", "NAME=PID: report the CPU time of this process and all its descendants (repeatable)", func(v string) error {
		w, err := parseWatch(v, true)
		o.watch = append(o.watch, w)
		return err
	})
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case o.clients < 1:
		return o, errors.New("-c must be at least 1")
	case o.count < 0:
		return o, errors.New("-n must not be negative")
	case o.count == 0 && o.duration <= 0:
		return o, errors.New("-d must be positive")
	case !slices.Contains([]string{"assay", "mock", "mock-models"}, o.target):
		return o, fmt.Errorf("unknown -target %q", o.target)
	case o.target == "assay" && !slices.Contains([]string{"llm", "heuristic", "cache"}, o.scenario):
		return o, fmt.Errorf("unknown -scenario %q", o.scenario)
	}
	if o.target != "assay" {
		o.scenario = ""
	}
	o.url = strings.TrimRight(o.url, "/")
	return o, nil
}

func parseWatch(v string, tree bool) (watchSpec, error) {
	name, p, ok := strings.Cut(v, "=")
	var pid int
	if _, err := fmt.Sscanf(p, "%d", &pid); !ok || err != nil || pid <= 0 || name == "" {
		return watchSpec{}, fmt.Errorf("want NAME=PID, got %q", v)
	}
	return watchSpec{name: name, pid: pid, tree: tree}, nil
}

// Report is what loadgen prints.
type Report struct {
	Label      string         `json:"label,omitempty"`
	Target     string         `json:"target"`
	Scenario   string         `json:"scenario,omitempty"`
	URL        string         `json:"url"`
	Clients    int            `json:"clients"`
	Mode       string         `json:"mode"` // duration or count
	WarmupS    float64        `json:"warmup_s"`
	MeasuredS  float64        `json:"measured_s"`
	Requests   int            `json:"requests"`
	OK         int            `json:"ok"`
	Errors     int            `json:"errors"`
	ErrorKinds map[string]int `json:"error_kinds,omitempty"`
	// Throughput is successful responses per second over the measurement.
	Throughput float64 `json:"throughput_rps"`
	LatencyMS  Latency `json:"latency_ms"`
	// Cached counts responses with "cached":true (Assay's evaluation cache).
	Cached int `json:"cached"`
	// GraderKinds counts the grader kind of the successful responses.
	GraderKinds map[string]int        `json:"grader_kinds,omitempty"`
	Processes   map[string]ProcReport `json:"processes,omitempty"`
	Start       time.Time             `json:"start"`
}

// Latency summarises the latencies of successful requests.
type Latency struct {
	Min  float64 `json:"min"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "summary": // loadgen summary FILE.json...: one line each
			return summary(args[1:], stdout)
		case "report": // loadgen report -dir OUT -o docs/performance.md
			return report(args[1:], stdout)
		}
	}
	o, err := parse(args, stdout)
	if err != nil {
		return err
	}
	bodies, err := newBodies(o)
	if err != nil {
		return err
	}
	client := newClient(o)
	if o.target == "assay" && o.scenario == "cache" {
		if err := prime(ctx, client, o, bodies); err != nil {
			return err
		}
	}
	rep, err := drive(ctx, client, o, bodies)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if o.out != "" {
		if err := os.WriteFile(o.out, b, 0o644); err != nil {
			return err
		}
	}
	_, err = stdout.Write(b)
	return err
}

// newClient returns a client whose transport keeps a connection per client
// open, so the load measures the server, not TCP handshakes.
func newClient(o options) *http.Client {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        o.clients + 16,
		MaxIdleConnsPerHost: o.clients + 16,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
		WriteBufferSize:     16 << 10,
		ReadBufferSize:      16 << 10,
	}
	// No Timeout: it would start a timer goroutine for every request. do
	// and prime set -timeout as a deadline of each request's context.
	return &http.Client{Transport: tr}
}

// result is one request's outcome.
type result struct {
	start, end time.Time
	err        string // "" when successful
	cached     bool
	grader     string
}

func drive(ctx context.Context, client *http.Client, o options, bodies *bodies) (Report, error) {
	rep := Report{Label: o.label, Target: o.target, Scenario: o.scenario, URL: o.url, Clients: o.clients,
		ErrorKinds: map[string]int{}, GraderKinds: map[string]int{}}
	var (
		seq       atomic.Int64
		wg        sync.WaitGroup
		mu        sync.Mutex
		results   = make([]result, 0, 1<<16)
		t0        = time.Now()
		measureAt = t0
		stopAt    time.Time
	)
	if o.count > 0 {
		rep.Mode = "count"
	} else {
		rep.Mode = "duration"
		measureAt = t0.Add(o.warmup)
		stopAt = measureAt.Add(o.duration)
	}
	// loadgen watches itself too: it shares the machine with what it measures.
	watcher := newWatcher(append(o.watch, watchSpec{name: "loadgen", pid: os.Getpid()}), o.sampleEvery)
	startWatch := func() { watcher.start(o.resetHWM) }
	if o.count > 0 || o.warmup <= 0 {
		startWatch()
	} else {
		time.AfterFunc(o.warmup, startWatch)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for i := range o.clients {
		wg.Go(func() {
			if o.ramp > 0 {
				d := time.Duration(int64(o.ramp) * int64(i) / int64(o.clients))
				select {
				case <-time.After(d):
				case <-ctx.Done():
					return
				}
			}
			// Small at first: in the scale scenario 10,000 clients send one
			// request each.
			local := make([]result, 0, 16)
			var buf bytes.Buffer // this client's response bodies
			for ctx.Err() == nil {
				n := seq.Add(1)
				if o.count > 0 && n > int64(o.count) {
					break
				}
				if o.count == 0 && !time.Now().Before(stopAt) {
					break
				}
				local = append(local, do(ctx, client, o, bodies, n, &buf))
			}
			mu.Lock()
			results = append(results, local...)
			mu.Unlock()
		})
	}
	wg.Wait()
	end := time.Now()
	procs := watcher.stop()
	if len(procs) > 0 {
		rep.Processes = procs
	}
	rep.Start = measureAt.UTC()
	var lat []float64
	var sum float64
	for _, r := range results {
		if o.count == 0 && (r.end.Before(measureAt) || r.end.After(stopAt)) {
			continue // warm-up, or finished after the window
		}
		rep.Requests++
		if r.err != "" {
			rep.Errors++
			rep.ErrorKinds[r.err]++
			continue
		}
		rep.OK++
		if r.cached {
			rep.Cached++
		}
		if r.grader != "" {
			rep.GraderKinds[r.grader]++
		}
		ms := float64(r.end.Sub(r.start).Microseconds()) / 1000
		lat = append(lat, ms)
		sum += ms
	}
	if o.count > 0 {
		rep.MeasuredS = end.Sub(t0).Seconds()
	} else {
		rep.WarmupS = o.warmup.Seconds()
		rep.MeasuredS = o.duration.Seconds()
	}
	rep.Throughput = round(float64(rep.OK)/rep.MeasuredS, 1)
	if len(lat) > 0 {
		sort.Float64s(lat)
		rep.LatencyMS = Latency{Min: lat[0], Mean: round(sum/float64(len(lat)), 2), P50: pct(lat, 50), P90: pct(lat, 90),
			P95: pct(lat, 95), P99: pct(lat, 99), Max: lat[len(lat)-1]}
	}
	if len(rep.ErrorKinds) == 0 {
		rep.ErrorKinds = nil
	}
	if len(rep.GraderKinds) == 0 {
		rep.GraderKinds = nil
	}
	return rep, ctx.Err()
}

// pct is the nearest-rank percentile of sorted values.
func pct(sorted []float64, p float64) float64 {
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func round(x float64, digits int) float64 {
	m := math.Pow(10, float64(digits))
	return math.Round(x*m) / m
}
