package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// buildInfo is what 'outbox version' prints: the module version (a tag
// with 'go install …@vX', "(devel)" from a checkout), the commit and
// whether the tree had changes, and the Go version.
type buildInfo struct {
	Version, Commit, Time, GoVersion string
	Modified                         bool
}

// stampedVersion and stampedCommit are set by the linker where the build
// has no VCS information to read, as in a container build without .git:
//
//	go build -ldflags "-X main.stampedVersion=v1.2.3 -X main.stampedCommit=abc123" ./cmd/outbox
var stampedVersion, stampedCommit string

func readBuildInfo() buildInfo {
	b := buildInfo{Version: "(unknown)", Commit: "unknown", GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		b.Version, b.GoVersion = bi.Main.Version, bi.GoVersion
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Commit = s.Value
			case "vcs.time":
				b.Time = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	if stampedVersion != "" {
		b.Version = stampedVersion
	}
	if stampedCommit != "" {
		b.Commit = stampedCommit
	}
	return b
}

func (b buildInfo) String() string {
	commit := b.Commit
	if len(commit) > 12 {
		commit = commit[:12]
	}
	if b.Modified {
		commit += "+changes"
	}
	s := fmt.Sprintf("outbox %s (commit %s", b.Version, commit)
	if b.Time != "" {
		s += ", " + b.Time
	}
	return s + ", " + b.GoVersion + ")"
}

func runVersion(_ context.Context, args []string, stdout, _ io.Writer) error {
	if wantsHelp(args) {
		return &helpRequest{cmd: "version", synopsis: "outbox version"}
	}
	if len(args) > 0 {
		return usagef("version takes no arguments")
	}
	fmt.Fprintln(stdout, readBuildInfo())
	return nil
}
