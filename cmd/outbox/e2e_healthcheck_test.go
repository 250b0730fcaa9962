package main_test

import (
	"bytes"
	"net"
	"os/exec"
	"strings"
	"testing"
)

// TestHealthcheck runs 'outbox healthcheck' as a container's HEALTHCHECK
// would: ready is exit 0, and a daemon that does not answer is exit 1
// with one line on stderr.
func TestHealthcheck(t *testing.T) {
	d := startDaemon(t, t.TempDir())
	check := func(env []string, args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		cmd := exec.Command(binary, append([]string{"healthcheck"}, args...)...)
		cmd.Env, cmd.Stdout, cmd.Stderr = env, &out, &errb
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), out.String(), errb.String()
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, out.String(), errb.String()
	}
	if code, out, errOut := check(nil, "http://"+d.httpAddr); code != 0 || strings.TrimSpace(out) != "ready" {
		t.Errorf("healthcheck URL: exit %d, %q %q", code, out, errOut)
	}
	// As in the image: the address comes from OUTBOX_HTTP, a wildcard bind
	// reached over loopback.
	_, port, _ := net.SplitHostPort(d.httpAddr)
	if code, _, errOut := check([]string{"OUTBOX_HTTP=0.0.0.0:" + port}); code != 0 {
		t.Errorf("healthcheck from OUTBOX_HTTP: exit %d, %q", code, errOut)
	}
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := check(nil, "http://"+d.httpAddr)
	if code != 1 || !strings.Contains(errOut, "not ready") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("healthcheck of a stopped daemon: exit %d, stderr %q; want 1 and one line", code, errOut)
	}
	if code, _, _ := check(nil, "ftp://x"); code != 2 {
		t.Errorf("healthcheck ftp://x: exit %d, want 2", code)
	}
}
