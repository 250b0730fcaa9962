package main_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/api"
	"github.com/outbox-mail/outbox/internal/smtpsink"
	"github.com/outbox-mail/outbox/queue"
)

// binary is the outbox command built once for the end-to-end tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "outbox-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "outbox")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building outbox:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	testToken = "e2e-token-0123456789"
	smtpUser  = "app"
	smtpPass  = "s3cret-password"
)

// daemonProc is a running 'outbox serve' process.
type daemonProc struct {
	t        testing.TB
	cmd      *exec.Cmd
	httpAddr string
	smtpAddr string
	logs     *logBuffer
	done     chan error
}

type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var listenRe = regexp.MustCompile(`msg="outbox is running" http=(\S+) smtp=(\S+)`)

// startDaemon runs outbox serve on free loopback ports with dataDir as its
// SQLite store and waits until it listens.
func startDaemon(t testing.TB, dataDir string, extra ...string) *daemonProc {
	t.Helper()
	args := append([]string{"serve", "--http", "127.0.0.1:0", "--smtp", "127.0.0.1:0",
		"--db", "sqlite:" + filepath.Join(dataDir, "outbox.db"),
		"--api-token", testToken, "--smtp-user", smtpUser + ":" + smtpPass}, extra...)
	return launchDaemon(t, exec.Command(binary, args...))
}

// launchDaemon starts cmd, an 'outbox serve' (possibly under a wrapper
// such as prlimit), and waits until it listens.
func launchDaemon(t testing.TB, cmd *exec.Cmd) *daemonProc {
	t.Helper()
	if cmd.Dir == "" {
		// What the daemon keeps beside a PostgreSQL store (./outbox-data)
		// goes to a temporary directory, not the source tree.
		cmd.Dir = t.TempDir()
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OUTBOX_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemonProc{t: t, cmd: cmd, logs: &logBuffer{}, done: make(chan error, 1)}
	addrs := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			d.logs.mu.Lock()
			d.logs.b.WriteString(line + "\n")
			d.logs.mu.Unlock()
			if m := listenRe.FindStringSubmatch(line); m != nil {
				addrs <- m[1:]
			}
		}
		d.done <- cmd.Wait()
	}()
	select {
	case a := <-addrs:
		d.httpAddr, d.smtpAddr = a[0], a[1]
	case err := <-d.done:
		t.Fatalf("outbox serve exited: %v\n%s", err, d.logs)
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("outbox serve did not start:\n%s", d.logs)
	}
	t.Cleanup(func() { d.stop() })
	return d
}

// stop sends SIGTERM and waits for a clean exit.
func (d *daemonProc) stop() error {
	if d.cmd.ProcessState != nil {
		return nil
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.done:
		return err
	case <-time.After(40 * time.Second):
		d.cmd.Process.Kill()
		return fmt.Errorf("outbox serve did not stop on SIGTERM:\n%s", d.logs)
	}
}

// api calls the daemon's HTTP API and decodes a JSON answer into out.
func (d *daemonProc) api(method, path, contentType string, body io.Reader, out any) int {
	d.t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, "http://"+d.httpAddr+path, body)
	if err != nil {
		d.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			d.t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, data, err)
		}
	}
	return resp.StatusCode
}

// waitStatus polls the API until message id has status want.
func (d *daemonProc) waitStatus(id string, want queue.Status) api.Message {
	d.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var m api.Message
	for time.Now().Before(deadline) {
		if code := d.api("GET", "/v1/messages/"+id, "", nil, &m); code != 200 {
			d.t.Fatalf("GET message %s: HTTP %d", id, code)
		}
		if m.Status == want {
			return m
		}
		time.Sleep(20 * time.Millisecond)
	}
	d.t.Fatalf("message %s is %s, want %s: %+v\n%s", id, m.Status, want, m.Recipients, d.logs)
	return m
}

func startSink(t *testing.T, opts smtpsink.Options) *smtpsink.Sink {
	t.Helper()
	s, err := smtpsink.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop() })
	return s
}

// insecureTLS trusts the daemon's self-signed certificate: the tests check
// that STARTTLS is used, not who signed it.
var insecureTLS = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // test only, loopback
