package main_test

import (
	"bytes"
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

// TestVersion runs the built binary, as a user would: both spellings print
// one line naming the commit and the Go version it was built with.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		var out, errb bytes.Buffer
		cmd := exec.Command(binary, args...)
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("outbox %s: %v: %s", args[0], err, errb.String())
		}
		line := strings.TrimSpace(out.String())
		if !strings.HasPrefix(line, "outbox ") || !strings.Contains(line, runtime.Version()) ||
			!strings.Contains(line, "commit ") || strings.Count(out.String(), "\n") != 1 {
			t.Fatalf("outbox %s printed %q", args[0], out.String())
		}
	}
	err := exec.Command(binary, "version", "extra").Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Fatalf("outbox version extra: %v, want exit status 2", err)
	}
}
