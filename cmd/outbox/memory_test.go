package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCgroupMemoryLimit(t *testing.T) {
	write := func(root, path, data string) {
		p := filepath.Join(root, path)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  int64
		ok    bool
	}{
		{"v2 limit", map[string]string{"proc/self/cgroup": "0::/system.slice/outbox.service\n",
			"sys/fs/cgroup/system.slice/outbox.service/memory.max": "268435456\n"}, 256 << 20, true},
		{"v2 max", map[string]string{"proc/self/cgroup": "0::/user.slice\n",
			"sys/fs/cgroup/user.slice/memory.max": "max\n"}, 0, false},
		{"v1 limit", map[string]string{"proc/self/cgroup": "12:cpu,cpuacct:/docker/x\n9:memory:/docker/x\n",
			"sys/fs/cgroup/memory/docker/x/memory.limit_in_bytes": "536870912\n"}, 512 << 20, true},
		{"v1 none", map[string]string{"proc/self/cgroup": "9:memory:/\n",
			"sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n"}, 0, false},
		{"no cgroup file", map[string]string{}, 0, false},
		{"garbage", map[string]string{"proc/self/cgroup": "0::/a\n", "sys/fs/cgroup/a/memory.max": "lots\n"}, 0, false},
	} {
		root := t.TempDir()
		for p, d := range tc.files {
			write(root, p, d)
		}
		if got, ok := cgroupMemoryLimit(root); got != tc.want || ok != tc.ok {
			t.Errorf("%s: %d %v, want %d %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}
