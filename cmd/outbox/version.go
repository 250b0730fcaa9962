package main

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
)

// buildInfo is what 'outbox version' prints: the module version (a tag
// with 'go install …@vX', "(devel)" from a checkout), the commit and
// whether the tree had changes, and the Go version.
type buildInfo struct {
	Version, Commit, Time, GoVersion string
	Modified                         bool
}

func readBuildInfo() buildInfo {
	b := buildInfo{Version: "(unknown)", Commit: "unknown"}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
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
	if len(args) > 0 {
		return usagef("version takes no arguments")
	}
	fmt.Fprintln(stdout, readBuildInfo())
	return nil
}
