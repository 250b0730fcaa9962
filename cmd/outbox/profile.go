package main

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// startProfile writes a CPU profile of the whole run to the file named by
// OUTBOX_CPU_PROFILE, for benchmarks of the built binary (internal/cmd/
// mtabench); the returned function stops it and is a no-op without it.
func startProfile() func() {
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
