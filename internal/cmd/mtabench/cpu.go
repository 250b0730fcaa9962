package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// cpuGroup accounts the CPU time of a set of processes and all their
// descendants, including those that have exited: a cgroup-v1 cpuacct group
// when the machine lets us make one, else the /proc schedstat of one
// process (enough for a single-process daemon, not for Postfix).
type cpuGroup struct {
	dir string // cgroup directory, "" when unavailable
	pid int    // fallback: the one process to read
}

const cpuacctRoot = "/sys/fs/cgroup/cpuacct"

// newCPUGroup makes a cgroup for a benchmark run, or returns a fallback
// group when cgroups cannot be made here.
func newCPUGroup(name string) *cpuGroup {
	dir := filepath.Join(cpuacctRoot, fmt.Sprintf("mtabench-%s-%d", name, os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return &cpuGroup{}
	}
	return &cpuGroup{dir: dir}
}

// shellPrefix returns a shell snippet that moves the shell into the group
// before it execs the server, so the server's first instruction counts.
func (g *cpuGroup) shellPrefix() string {
	if g.dir == "" {
		return ""
	}
	return "echo $$ > " + filepath.Join(g.dir, "cgroup.procs") + " && "
}

// usage returns the group's CPU time so far.
func (g *cpuGroup) usage() (time.Duration, error) {
	if g.dir != "" {
		b, err := os.ReadFile(filepath.Join(g.dir, "cpuacct.usage"))
		if err != nil {
			return 0, err
		}
		ns, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		return time.Duration(ns), err
	}
	if g.pid == 0 {
		return 0, fmt.Errorf("no cgroup and no process to account CPU for")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/schedstat", g.pid))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	ns, err := strconv.ParseInt(f[0], 10, 64)
	return time.Duration(ns), err
}

// remove deletes the cgroup once its processes are gone.
func (g *cpuGroup) remove() {
	if g.dir == "" {
		return
	}
	for range 50 {
		if os.Remove(g.dir) == nil {
			return
		}
		// Stragglers: hand them back to the root group.
		if b, err := os.ReadFile(filepath.Join(g.dir, "cgroup.procs")); err == nil {
			for _, p := range strings.Fields(string(b)) {
				os.WriteFile(filepath.Join(cpuacctRoot, "cgroup.procs"), []byte(p), 0)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (g *cpuGroup) describe() string {
	if g.dir != "" {
		return "cgroup cpuacct"
	}
	return "/proc schedstat"
}

// processCPU sums the CPU time of the live processes whose command name is
// comm (e.g. the PostgreSQL server's backends), from /proc: a delta over a
// run whose processes stay alive (pooled connections) is their cost.
func processCPU(comm string) (time.Duration, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	var ticks int64
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || close < open || s[open+1:close] != comm {
			continue
		}
		f := strings.Fields(s[close+1:])
		// Fields after the name: state is f[0]; utime and stime are the
		// 14th and 15th fields of the line, f[11] and f[12] here.
		u, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + st
	}
	return time.Duration(ticks) * (time.Second / 100), nil
}
