package main

import (
	"io/fs"
	"math"
	"runtime/debug"
	"strconv"
	"strings"
)

// cgroupMemoryFiles are where a process in a container reads its memory
// limit: cgroup v2, then v1, as the container sees its own cgroup.
var cgroupMemoryFiles = []string{
	"sys/fs/cgroup/memory.max",
	"sys/fs/cgroup/memory/memory.limit_in_bytes",
}

// memoryLimitFor returns the soft memory limit the server should run
// under: 80% of its container's memory limit, so that the garbage
// collector works harder before the container is killed (a burst of
// 10,000 gradings in flight otherwise lets the heap grow to twice what is
// in use; docs/performance.md). 0 means leave Go's setting alone: GOMEMLIMIT
// is set (GOMEMLIMIT=off turns the limit off), or there is no container
// limit.
func memoryLimitFor(root fs.FS, getenv func(string) string) int64 {
	if getenv("GOMEMLIMIT") != "" {
		return 0
	}
	for _, name := range cgroupMemoryFiles {
		b, err := fs.ReadFile(root, name)
		if err != nil {
			continue
		}
		s := strings.TrimSpace(string(b))
		n, err := strconv.ParseInt(s, 10, 64)
		// "max" (v2) and a number near 2^63 (v1) mean no limit.
		if err != nil || n <= 0 || n >= 1<<60 {
			return 0
		}
		return n / 10 * 8
	}
	return 0
}

// memoryLimitAttr is Go's soft memory limit for the start-up log: "off",
// or the limit in MiB.
func memoryLimitAttr() string {
	l := debug.SetMemoryLimit(-1) // -1 reads it
	if l == math.MaxInt64 {
		return "off"
	}
	return strconv.FormatInt(l>>20, 10) + "MiB"
}
