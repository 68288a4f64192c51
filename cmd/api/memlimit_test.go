package main

import (
	"testing"
	"testing/fstest"
)

func TestMemoryLimitFor(t *testing.T) {
	const gib = 1 << 30
	tests := []struct {
		name  string
		files map[string]string
		gomem string
		want  int64
	}{
		{"cgroup v2 limit", map[string]string{"sys/fs/cgroup/memory.max": "1073741824\n"}, "", gib / 10 * 8},
		{"cgroup v2 no limit", map[string]string{"sys/fs/cgroup/memory.max": "max\n"}, "", 0},
		{"cgroup v1 limit", map[string]string{"sys/fs/cgroup/memory/memory.limit_in_bytes": "536870912\n"}, "", 536870912 / 10 * 8},
		{"cgroup v1 no limit", map[string]string{"sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n"}, "", 0},
		{"v2 before v1", map[string]string{"sys/fs/cgroup/memory.max": "1073741824", "sys/fs/cgroup/memory/memory.limit_in_bytes": "536870912"}, "", gib / 10 * 8},
		{"no cgroup files", map[string]string{}, "", 0},
		{"garbage", map[string]string{"sys/fs/cgroup/memory.max": "lots"}, "", 0},
		{"GOMEMLIMIT set wins", map[string]string{"sys/fs/cgroup/memory.max": "1073741824"}, "300MiB", 0},
		{"GOMEMLIMIT=off wins", map[string]string{"sys/fs/cgroup/memory.max": "1073741824"}, "off", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := fstest.MapFS{}
			for name, data := range tc.files {
				root[name] = &fstest.MapFile{Data: []byte(data)}
			}
			getenv := func(k string) string {
				if k == "GOMEMLIMIT" {
					return tc.gomem
				}
				return ""
			}
			if got := memoryLimitFor(root, getenv); got != tc.want {
				t.Errorf("memoryLimitFor = %d, want %d", got, tc.want)
			}
		})
	}
}
