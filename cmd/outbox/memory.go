package main

import (
	"bufio"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
)

// defaultGCPercent is 'outbox serve's GOGC when the environment sets
// none. Measured on the built daemon (README, Performance): a 200 MiB
// message submitted over SMTP and relayed peaks at 34-37 MiB of RSS with
// 50 against 36-38 MiB with Go's 100 (21 MiB of either is the
// executable's own pages), and 16 connections of small mail at 39-40 MiB
// against 43-44 MiB, for about 10 % more CPU per small message; 25 saves
// a little more memory for 40 % more CPU.
const defaultGCPercent = 50

// softLimitShare is the part of a cgroup's memory limit (a container's,
// or systemd's MemoryMax=) that becomes the Go runtime's soft limit, so
// that the collector works harder before the kernel kills the daemon.
const softLimitShare = 0.9

// setMemoryLimits sets the collector's pace and soft limit, unless GOGC
// or GOMEMLIMIT say otherwise, and returns what it set as log attributes.
func setMemoryLimits() []any {
	gc, limit := "GOGC", "GOMEMLIMIT"
	if _, ok := os.LookupEnv("GOGC"); !ok {
		debug.SetGCPercent(defaultGCPercent)
		gc = strconv.Itoa(defaultGCPercent)
	}
	if _, ok := os.LookupEnv("GOMEMLIMIT"); !ok {
		limit = "none"
		if n, ok := cgroupMemoryLimit("/"); ok {
			soft := int64(float64(n) * softLimitShare)
			debug.SetMemoryLimit(soft)
			limit = strconv.FormatInt(soft>>20, 10) + "MiB (90% of the cgroup's memory limit)"
		}
	}
	return []any{"gc_percent", gc, "soft_limit", limit}
}

// cgroupMemoryLimit reads this process's cgroup memory limit under root
// ("/" but in tests): cgroup v2's memory.max, else v1's
// memory.limit_in_bytes. No limit, or none readable, is false.
func cgroupMemoryLimit(root string) (int64, bool) {
	f, err := os.Open(filepath.Join(root, "proc/self/cgroup"))
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "0::/path" (v2), or "N:memory:/path" (v1).
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		var file string
		switch {
		case parts[0] == "0" && parts[1] == "":
			file = filepath.Join(root, "sys/fs/cgroup", parts[2], "memory.max")
		case strings.Contains(","+parts[1]+",", ",memory,"):
			file = filepath.Join(root, "sys/fs/cgroup/memory", parts[2], "memory.limit_in_bytes")
		default:
			continue
		}
		if n, ok := readLimit(file); ok {
			return n, true
		}
	}
	return 0, false
}

// readLimit reads a cgroup limit file: a byte count, or "max" (none). v1
// says "none" with a number near the largest int64.
func readLimit(file string) (int64, bool) {
	data, err := os.ReadFile(file)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil || n <= 0 || n >= math.MaxInt64/2 {
		return 0, false
	}
	return n, true
}
