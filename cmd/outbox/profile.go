package main

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// startProfile writes a CPU profile of the whole run to the file named by
// OUTBOX_CPU_PROFILE, and the allocations of the run to the one named by
// OUTBOX_ALLOC_PROFILE, for benchmarks of the built binary (internal/cmd/
// mtabench); the returned function stops them and is a no-op without.
func startProfile() func() {
	stopCPU := startCPUProfile()
	return func() {
		stopCPU()
		writeAllocProfile()
	}
}

func writeAllocProfile() {
	path := os.Getenv("OUTBOX_ALLOC_PROFILE")
	if path == "" {
		return
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.Lookup("allocs").WriteTo(f, 0)
		f.Close()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "outbox: OUTBOX_ALLOC_PROFILE: %v\n", err)
	}
}

func startCPUProfile() func() {
	path := os.Getenv("OUTBOX_CPU_PROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "outbox: OUTBOX_CPU_PROFILE: %v\n", err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
