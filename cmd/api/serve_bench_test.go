package main

import (
	"context"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"
	"testing"
	"time"
)

// TestServeForProfile runs the server exactly as `api serve` does, from the
// environment, for ASSAY_PROFILE_SERVE (a duration), so that `go test
// -cpuprofile/-memprofile` profiles the server alone while scripts/bench.sh
// (or loadgen by hand) drives load at it from another process. It is off,
// and skipped, unless that variable is set; it adds no endpoint to the
// server. ASSAY_PROFILE_HEAP_AT adds a heap profile taken during the run.
// See docs/performance.md:
//
//	ASSAY_PROFILE_SERVE=40s ASSAY_ADDR=127.0.0.1:18080 DATABASE_URL=... \
//	  go test -run TestServeForProfile -count=1 -cpuprofile cpu.out -memprofile mem.out ./cmd/api
func TestServeForProfile(t *testing.T) {
	v := os.Getenv("ASSAY_PROFILE_SERVE")
	if v == "" {
		t.Skip("set ASSAY_PROFILE_SERVE=DURATION to serve for that long under the profiler")
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("ASSAY_PROFILE_SERVE: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	// SIGTERM ends the server early, as it does `api serve`, and the test
	// returns normally, so the profiles are still written.
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	logf, err := os.Create(os.DevNull)
	if p := os.Getenv("ASSAY_PROFILE_LOG"); p != "" {
		logf, err = os.Create(p)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	// ASSAY_PROFILE_HEAP_AT=DURATION writes a heap profile (in use at that
	// moment, e.g. at the peak of a load) to ASSAY_PROFILE_HEAP_FILE.
	if at := os.Getenv("ASSAY_PROFILE_HEAP_AT"); at != "" {
		wait, err := time.ParseDuration(at)
		if err != nil {
			t.Fatalf("ASSAY_PROFILE_HEAP_AT: %v", err)
		}
		time.AfterFunc(wait, func() {
			f, err := os.Create(os.Getenv("ASSAY_PROFILE_HEAP_FILE"))
			if err != nil {
				t.Errorf("heap profile: %v", err)
				return
			}
			defer f.Close()
			runtime.GC()
			if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
				t.Errorf("heap profile: %v", err)
			}
			if err := pprof.Lookup("goroutine").WriteTo(os.Stderr, 1); err != nil {
				t.Errorf("goroutine profile: %v", err)
			}
		})
	}
	if err := run(ctx, []string{"serve"}, os.Getenv, logf); err != nil {
		t.Fatal(err)
	}
}
