package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ProcReport is what a watched process used during the measurement.
type ProcReport struct {
	PID int `json:"pid"`
	// CPUSeconds is utime+stime (of the process, or of its tree) over the
	// measurement, from /proc/PID/stat; CPUPercent is that over the wall
	// time, where 100 is one core.
	CPUSeconds float64 `json:"cpu_s"`
	CPUPercent float64 `json:"cpu_pct"`
	// PeakRSSMB is VmHWM from /proc/PID/status at the end: the peak
	// resident set since the measurement started when the reset worked,
	// else since the process started. MaxSampledRSSMB is the largest
	// VmRSS seen by sampling. Not reported for trees.
	PeakRSSMB       float64 `json:"peak_rss_mb,omitempty"`
	HWMReset        bool    `json:"hwm_reset,omitempty"`
	MaxSampledRSSMB float64 `json:"max_sampled_rss_mb,omitempty"`
	Threads         int     `json:"threads,omitempty"`
	Tree            bool    `json:"tree,omitempty"`
	Processes       int     `json:"processes,omitempty"`
}

// clkTck is USER_HZ, the unit of utime and stime: 100 on every Linux
// architecture Go supports.
const clkTck = 100

type watcher struct {
	specs []watchSpec
	every time.Duration

	mu      sync.Mutex
	started bool
	t0      time.Time
	cpu0    map[string]float64
	hwmOK   map[string]bool
	maxRSS  map[string]float64
	done    chan struct{}
	stopped sync.WaitGroup
}

func newWatcher(specs []watchSpec, every time.Duration) *watcher {
	return &watcher{specs: specs, every: every, cpu0: map[string]float64{}, hwmOK: map[string]bool{},
		maxRSS: map[string]float64{}, done: make(chan struct{})}
}

// start marks the beginning of the measurement: CPU counters are read and
// the peak RSS reset.
func (w *watcher) start(resetHWM bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started || len(w.specs) == 0 {
		return
	}
	w.started = true
	w.t0 = time.Now()
	for _, s := range w.specs {
		w.cpu0[s.name] = cpuOf(s)
		if resetHWM && !s.tree {
			// Writing 5 to clear_refs resets VmHWM to the current RSS.
			w.hwmOK[s.name] = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", s.pid), []byte("5"), 0) == nil
		}
	}
	w.stopped.Go(func() {
		t := time.NewTicker(w.every)
		defer t.Stop()
		for {
			w.sample()
			select {
			case <-w.done:
				return
			case <-t.C:
			}
		}
	})
}

func (w *watcher) sample() {
	for _, s := range w.specs {
		if s.tree {
			continue
		}
		st := status(s.pid)
		w.mu.Lock()
		w.maxRSS[s.name] = max(w.maxRSS[s.name], st["VmRSS"]/1024)
		w.mu.Unlock()
	}
}

// stop ends the measurement and returns the figures by name.
func (w *watcher) stop() map[string]ProcReport {
	w.mu.Lock()
	started := w.started
	w.mu.Unlock()
	if !started {
		return nil
	}
	close(w.done)
	w.stopped.Wait()
	w.sample()
	wall := time.Since(w.t0).Seconds()
	out := map[string]ProcReport{}
	for _, s := range w.specs {
		cpu := cpuOf(s) - w.cpu0[s.name]
		r := ProcReport{PID: s.pid, CPUSeconds: round(cpu, 2), CPUPercent: round(100*cpu/wall, 1), Tree: s.tree}
		if s.tree {
			r.Processes = len(tree(s.pid))
		} else {
			st := status(s.pid)
			r.PeakRSSMB = round(st["VmHWM"]/1024, 1)
			r.HWMReset = w.hwmOK[s.name]
			r.MaxSampledRSSMB = round(w.maxRSS[s.name], 1)
			r.Threads = int(st["Threads"])
		}
		out[s.name] = r
	}
	return out
}

func cpuOf(s watchSpec) float64 {
	if !s.tree {
		return cpuSeconds(s.pid)
	}
	var sum float64
	for _, pid := range tree(s.pid) {
		sum += cpuSeconds(pid)
	}
	return sum
}

// cpuSeconds reads utime+stime of pid from /proc/PID/stat.
func cpuSeconds(pid int) float64 {
	f := statFields(pid)
	if len(f) < 13 {
		return 0
	}
	// After "pid (comm)": state is field 3, utime 14 and stime 15, so
	// indexes 11 and 12 of what follows the comm.
	ut, _ := strconv.ParseFloat(f[11], 64)
	stt, _ := strconv.ParseFloat(f[12], 64)
	return (ut + stt) / clkTck
}

// statFields returns the fields of /proc/PID/stat after the command name.
func statFields(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}

// tree returns pid and its descendants.
func tree(root int) []int {
	children := map[int][]int{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		f := statFields(pid)
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		children[ppid] = append(children[ppid], pid)
	}
	out := []int{root}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// status reads the numeric fields of /proc/PID/status (kB for memory).
func status(pid int) map[string]float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	out := map[string]float64{}
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		fs := strings.Fields(v)
		if len(fs) == 0 {
			continue
		}
		if x, err := strconv.ParseFloat(fs[0], 64); err == nil {
			out[k] = x
		}
	}
	return out
}
