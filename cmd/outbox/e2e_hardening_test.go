package main_test

import (
	"bufio"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/internal/testenv"
	"github.com/outbox-mail/outbox/internal/tlsfiles"
)

// daemonArgs are startDaemon's arguments without the credentials.
func daemonArgs(dataDir string, extra ...string) []string {
	return append([]string{"serve", "--http", "127.0.0.1:0", "--smtp", "127.0.0.1:0",
		"--db", "sqlite:" + filepath.Join(dataDir, "outbox.db")}, extra...)
}

// smtpFrom opens an SMTP client from a chosen loopback source address.
func smtpFrom(t *testing.T, src, addr string) *smtp.Client {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	c, err := smtp.NewClient(conn, "127.0.0.1")
	if err != nil {
		t.Fatalf("greeting from %s: %v", src, err)
	}
	if err := c.StartTLS(insecureTLS); err != nil {
		t.Fatalf("STARTTLS from %s: %v", src, err)
	}
	return c
}

// sendFrom submits one message with STARTTLS and AUTH from src.
func sendFrom(t *testing.T, src, addr string) {
	t.Helper()
	c := smtpFrom(t, src, addr)
	defer c.Close()
	if err := c.Auth(smtp.PlainAuth("", smtpUser, smtpPass, "127.0.0.1")); err != nil {
		t.Fatalf("AUTH from %s: %v", src, err)
	}
	if err := c.Mail("app@example.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("ann@example.test"); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "Subject: legit\r\n\r\nHello.\r\n")
	if err := w.Close(); err != nil {
		t.Fatalf("DATA from %s: %v", src, err)
	}
	c.Quit()
}

// raiseOwnFileLimit makes room for the test's own client connections.
func raiseOwnFileLimit(t *testing.T, need uint64) {
	var lim syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	if lim.Cur < need && lim.Max >= need {
		lim.Cur = need
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
		syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	if lim.Cur < need {
		testenv.Missing(t, "the test needs %d open files and may have only %d", need, lim.Cur)
	}
}

// With the daemon's open-file limit at 1,024, 1,100 idle connections from
// 50 addresses (each under the per-address cap) neither stop a legitimate
// submission from another address nor the HTTP API: the SMTP cap keeps the
// daemon below its limit, the oldest idle strangers make room for a
// newcomer, and every flood connection is answered, 220 or 421.
func TestConnectionFloodUnderFDLimit(t *testing.T) {
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		testenv.Missing(t, "needs prlimit (util-linux) to run the daemon with a 1,024 open-file limit")
	}
	raiseOwnFileLimit(t, 4096)
	args := daemonArgs(t.TempDir(), "--api-token", testToken, "--smtp-user", smtpUser+":"+smtpPass)
	d := launchDaemon(t, exec.Command(prlimit, append([]string{"--nofile=1024:1024", binary}, args...)...))
	if logs := d.logs.String(); !strings.Contains(logs, "open_files=1024") || !strings.Contains(logs, "smtp_max=384") {
		t.Fatalf("the daemon did not size its caps to the 1,024 limit:\n%s", logs)
	}

	const flood = 1100
	var greeted, refused, other atomic.Int64
	conns := make(chan net.Conn, flood)
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for i := range flood {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			dl := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(10+i%50))}, Timeout: 10 * time.Second}
			c, err := dl.Dial("tcp", d.smtpAddr)
			if err != nil {
				other.Add(1)
				return
			}
			conns <- c
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			line, _ := bufio.NewReader(c).ReadString('\n')
			switch {
			case strings.HasPrefix(line, "220 "):
				greeted.Add(1)
			case strings.HasPrefix(line, "421 4.7.0"):
				refused.Add(1)
			default:
				other.Add(1)
			}
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		close(conns)
		for c := range conns {
			c.Close()
		}
	})
	t.Logf("flood: %d greeted, %d refused with 421 4.7.0, %d other", greeted.Load(), refused.Load(), other.Load())
	if other.Load() != 0 || greeted.Load()+refused.Load() != flood {
		t.Fatalf("flood connections not all answered: %d greeted, %d refused, %d other\n%s",
			greeted.Load(), refused.Load(), other.Load(), d.logs)
	}
	// Idle strangers become evictable a second after they connect; only
	// their age matters, so a slow machine waits longer, never shorter.
	time.Sleep(1500 * time.Millisecond)
	start := time.Now()
	sendFrom(t, "127.0.0.2", d.smtpAddr)
	t.Logf("legitimate submission during the flood took %v", time.Since(start))
	resp, err := http.Get("http://" + d.httpAddr + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/healthz during the flood: %v %v", resp, err)
	}
	resp.Body.Close()
	var accepted struct{ ID string }
	if code := d.api("POST", "/v1/messages", "application/json", strings.NewReader(
		`{"from":"app@example.test","to":["bob@example.test"],"text":"during the flood"}`), &accepted); code != 202 {
		t.Fatalf("API during the flood: %d", code)
	}
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", d.cmd.Process.Pid))
	t.Logf("daemon holds %d file descriptors of 1,024", len(fds))
	if strings.Contains(d.logs.String(), "too many open files") {
		t.Fatalf("the daemon ran out of file descriptors:\n%s", d.logs)
	}
}

// Password guessing from one address over fresh, parallel connections is
// held to a few guesses a second, while the right password from another
// address gets in during the attack.
func TestBruteForceIsThrottled(t *testing.T) {
	d := startDaemon(t, t.TempDir())
	const attempts, workers = 10, 5
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	legit := make(chan time.Duration, 1)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := next.Add(1)
				if n > attempts {
					return
				}
				c := smtpFrom(t, "127.0.0.1", d.smtpAddr)
				err := c.Auth(smtp.PlainAuth("", smtpUser, fmt.Sprintf("guess-%d", n), "127.0.0.1"))
				c.Close()
				if err != nil && strings.Contains(err.Error(), "535") {
					failed.Add(1)
				} else {
					t.Errorf("guess %d: %v, want 535", n, err)
				}
				if n == 8 {
					go func() {
						t0 := time.Now()
						c := smtpFrom(t, "127.0.0.2", d.smtpAddr)
						defer c.Close()
						if err := c.Auth(smtp.PlainAuth("", smtpUser, smtpPass, "127.0.0.1")); err != nil {
							t.Errorf("the right password from another address during the attack: %v", err)
						}
						legit <- time.Since(t0)
					}()
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	lat := <-legit
	t.Logf("%d guesses in %v: %.2f guesses/s; the right password from 127.0.0.2 took %v",
		attempts, elapsed, attempts/elapsed.Seconds(), lat)
	if failed.Load() != attempts {
		t.Fatalf("%d of %d guesses answered 535", failed.Load(), attempts)
	}
	// After five free failures the address's attempts wait in line
	// 0.25 s, 0.5 s, 1 s, 2 s apart: the tenth cannot start before 3.75 s.
	// Only this lower bound is asserted; a busy machine only adds to it.
	if elapsed < 3*time.Second {
		t.Fatalf("%d guesses took only %v: not throttled", attempts, elapsed)
	}
	if strings.Contains(d.logs.String(), "authentication failed") {
		t.Errorf("each failure is still logged:\n%s", d.logs)
	}
}

func TestSecondServeOnTheSameSQLiteFile(t *testing.T) {
	dir := t.TempDir()
	first := startDaemon(t, dir)
	cmd := exec.Command(binary, daemonArgs(dir, "--api-token", testToken, "--smtp-user", smtpUser+":"+smtpPass)...)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("a second serve on the same SQLite file started:\n%s", out)
	}
	want := fmt.Sprintf("is in use by another outbox serve (pid %d)", first.cmd.Process.Pid)
	if !strings.Contains(string(out), want) || !strings.Contains(string(out), "PostgreSQL") {
		t.Fatalf("second serve said %q, want it to name the first (%q) and PostgreSQL", out, want)
	}
	// The first goes on serving.
	if code := first.api("GET", "/v1/messages", "", nil, nil); code != 200 {
		t.Fatalf("first daemon after the refused second: %d", code)
	}
}

// A start-up failure never prints the store password, whatever form the
// --db value has.
func TestStartupErrorsHideDSNPasswords(t *testing.T) {
	for _, db := range []string{
		"host=127.0.0.1 user=u password=hunter22 dbname=x",
		"postgres:hunter22@127.0.0.1/x",
		"postgres//u:hunter22@127.0.0.1/x",
		"postgres://u:hunter22@127.0.0.1:1/x?sslmode=disable",
		"postgres://u@127.0.0.1:1/x?sslmode=disable&password=hunter22",
		"postgres://u:hunter22@127.0.0.1:notaport/x",
	} {
		cmd := exec.Command(binary, "serve", "--db", db, "--http", "127.0.0.1:0", "--smtp", "127.0.0.1:0")
		cmd.Dir = t.TempDir()
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Errorf("--db %q: started", db)
			continue
		}
		if strings.Contains(string(out), "hunter22") {
			t.Errorf("--db %q: the password is in the output:\n%s", db, out)
		}
		if !strings.Contains(string(out), "outbox serve:") {
			t.Errorf("--db %q: no error line:\n%s", db, out)
		}
	}
}

// Secrets can come from files (flag or OUTBOX_*_FILE), so they are not in
// the process's command line or environment.
func TestSecretsFromFiles(t *testing.T) {
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "tokens")
	userFile := filepath.Join(dir, "users")
	os.WriteFile(tokFile, []byte(testToken+"\n"), 0o600)
	os.WriteFile(userFile, []byte(smtpUser+":"+smtpPass+"\n"), 0o600)
	cmd := exec.Command(binary, daemonArgs(dir, "--smtp-user-file", userFile)...)
	cmd.Env = []string{"OUTBOX_API_TOKEN_FILE=" + tokFile}
	d := launchDaemon(t, cmd)
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", d.cmd.Process.Pid))
	environ, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", d.cmd.Process.Pid))
	for _, secret := range []string{testToken, smtpPass} {
		if strings.Contains(string(cmdline), secret) || strings.Contains(string(environ), secret) {
			t.Fatalf("%q is visible in the process's command line or environment", secret)
		}
	}
	if code := d.api("GET", "/v1/messages", "", nil, nil); code != 200 {
		t.Fatalf("token from OUTBOX_API_TOKEN_FILE refused: %d", code)
	}
	sendFrom(t, "127.0.0.1", d.smtpAddr)
}

var fingerprintRe = regexp.MustCompile(`self-signed certificate.* sha256=([0-9A-F:]+)`)

// The self-signed STARTTLS certificate is kept in the data directory and
// served again after a restart; it is a leaf naming the bind address and
// the host name, and its fingerprint is logged.
func TestSelfSignedCertificatePersists(t *testing.T) {
	dir := t.TempDir()
	served := func(d *daemonProc) *x509.Certificate {
		c, err := smtp.Dial(d.smtpAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.StartTLS(insecureTLS); err != nil {
			t.Fatal(err)
		}
		st, _ := c.TLSConnectionState()
		return st.PeerCertificates[0]
	}
	extra := []string{"--hostname", "mx.outbox.test"}
	d := startDaemon(t, dir, extra...)
	cert := served(d)
	m := fingerprintRe.FindStringSubmatch(d.logs.String())
	sum := sha256.Sum256(cert.Raw)
	if m == nil || strings.ReplaceAll(m[1], ":", "") != strings.ToUpper(hex.EncodeToString(sum[:])) {
		t.Fatalf("logged fingerprint %v does not match the served certificate\n%s", m, d.logs)
	}
	if cert.IsCA || cert.VerifyHostname("127.0.0.1") != nil || cert.VerifyHostname("mx.outbox.test") != nil {
		t.Fatalf("certificate: CA=%v, SANs %v %v", cert.IsCA, cert.DNSNames, cert.IPAddresses)
	}
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	again := served(startDaemon(t, dir, extra...))
	if !again.Equal(cert) {
		t.Fatal("a restart served a different certificate")
	}
}

// --http-tls-cert serves the API over TLS, and past --http-max-connections
// the health endpoints are still answered while the rest gets 503.
func TestHTTPSAndConnectionCap(t *testing.T) {
	dir := t.TempDir()
	cert, _, err := tlsfiles.Persistent(filepath.Join(dir, "https"), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, dir, "--http-tls-cert", filepath.Join(dir, "https", "cert.pem"),
		"--http-tls-key", filepath.Join(dir, "https", "key.pem"), "--http-max-connections", "3")
	roots := x509.NewCertPool()
	roots.AddCert(cert.Leaf)
	get := func(path string) (*http.Response, error) {
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: roots}, DisableKeepAlives: true}}
		req, _ := http.NewRequest("GET", "https://"+d.httpAddr+path, nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		return c.Do(req)
	}
	resp, err := get("/v1/messages")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("HTTPS API: %v %v", resp, err)
	}
	resp.Body.Close()
	if resp, err := http.Get("http://" + d.httpAddr + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Fatalf("plain HTTP on the TLS port: %d, want TLS's 400", resp.StatusCode)
		}
	}
	// Hold every slot with idle TLS connections.
	for range 3 {
		c, err := tls.Dial("tcp", d.httpAddr, &tls.Config{RootCAs: roots})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
	resp, err = get("/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/healthz with every slot taken: %v %v", resp, err)
	}
	resp.Body.Close()
	resp, err = get("/v1/messages")
	if err != nil || resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("API with every slot taken: %v %v, want 503 with Retry-After", resp, err)
	}
	resp.Body.Close()
}

func TestRequireAuthNeedsUsers(t *testing.T) {
	out, err := exec.Command(binary, daemonArgs(t.TempDir(), "--smtp-require-auth")...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--smtp-require-auth needs") {
		t.Fatalf("--smtp-require-auth without users: %v %s", err, out)
	}
}

// On a full disk /readyz answers 503 with a reason and submissions are
// refused as temporary failures (503 + Retry-After, SMTP 4xx), never
// 500; when space returns it is ready again, and every message accepted
// before, during and after is there and delivered. The store lives on a
// 16 MiB tmpfs mounted in the daemon's own mount namespace.
func TestReadyzOnAFullDisk(t *testing.T) {
	unshare, err := exec.LookPath("unshare")
	if err != nil || os.Geteuid() != 0 {
		testenv.Missing(t, "needs root and unshare(1) to give the daemon a small tmpfs")
	}
	mnt := t.TempDir()
	script := `mount -t tmpfs -o size=16m tmpfs "$1" || exit 97; shift; exec "$@"`
	args := append([]string{"--mount", "--propagation", "private", "sh", "-c", script, "sh", mnt, binary},
		daemonArgs(mnt, "--api-token", testToken, "--smtp-user", smtpUser+":"+smtpPass, "--min-free-space", "2MiB")...)
	d := launchDaemon(t, exec.Command(unshare, args...))
	root := fmt.Sprintf("/proc/%d/root%s", d.cmd.Process.Pid, mnt)
	var st syscall.Statfs_t
	if err := syscall.Statfs(root, &st); err != nil || st.Blocks*uint64(st.Bsize) > 32<<20 {
		testenv.Missing(t, "cannot see the daemon's tmpfs at %s: %v", root, err)
	}
	readyz := func() (int, string) {
		resp, err := http.Get("http://" + d.httpAddr + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitReady := func(want int) string {
		for range 300 {
			if code, body := readyz(); code == want {
				return body
			}
			time.Sleep(100 * time.Millisecond)
		}
		code, body := readyz()
		t.Fatalf("/readyz stayed %d %s, want %d\n%s", code, body, want, d.logs)
		return ""
	}
	var accepted []string
	post := func(text string) int {
		var out struct{ ID string }
		req, _ := http.NewRequest("POST", "http://"+d.httpAddr+"/v1/messages", strings.NewReader(
			`{"from":"app@example.test","to":["ann@example.test"],"text":"`+text+`"}`))
		req.Header.Set("Authorization", "Bearer "+testToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		switch resp.StatusCode {
		case 202:
			if err := json.Unmarshal(b, &out); err != nil || out.ID == "" {
				t.Fatalf("202 without an id: %s", b)
			}
			accepted = append(accepted, out.ID)
		case 503:
			if resp.Header.Get("Retry-After") == "" {
				t.Errorf("503 without Retry-After: %s", b)
			}
		default:
			t.Errorf("POST on %s: %d %s", text, resp.StatusCode, b)
		}
		return resp.StatusCode
	}

	waitReady(200)
	for i := range 5 {
		if code := post(fmt.Sprintf("before %d", i)); code != 202 {
			t.Fatalf("before the disk filled: %d", code)
		}
	}
	// Fill the disk.
	filler, err := os.Create(root + "/filler")
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 256<<10)
	for {
		if _, err := filler.Write(chunk); err != nil {
			break
		}
	}
	filler.Close()
	body := waitReady(503)
	if !strings.Contains(body, `"reason":"disk_full"`) && !strings.Contains(body, `"reason":"store_`) {
		t.Fatalf("unready body %s names no reason", body)
	}
	refused := 0
	for i := range 5 {
		if post(fmt.Sprintf("during %d %s", i, strings.Repeat("x", 100<<10))) == 503 {
			refused++
		}
	}
	t.Logf("with the disk full: /readyz %s; %d of 5 submissions refused with 503", strings.TrimSpace(body), refused)
	if refused == 0 {
		t.Fatal("a full disk refused no submission")
	}
	code, reply := smtpTry(t, d.smtpAddr)
	t.Logf("SMTP with the disk full: %d %s", code, reply)
	if code/100 != 4 {
		t.Fatalf("SMTP with the disk full: %d %s, want a temporary failure", code, reply)
	}
	// Space returns.
	if err := os.Remove(root + "/filler"); err != nil {
		t.Fatal(err)
	}
	waitReady(200)
	for i := range 3 {
		if code := post(fmt.Sprintf("after %d", i)); code != 202 {
			t.Fatalf("after space returned: %d", code)
		}
	}
	for _, id := range accepted {
		d.waitStatus(id, "delivered")
	}
	t.Logf("%d accepted messages, all delivered", len(accepted))
}

// smtpTry submits one message and returns the final reply code.
func smtpTry(t *testing.T, addr string) (int, string) {
	c := smtpFrom(t, "127.0.0.1", addr)
	defer c.Close()
	if err := c.Auth(smtp.PlainAuth("", smtpUser, smtpPass, "127.0.0.1")); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("app@example.test"); err != nil {
		return replyCode(err)
	}
	if err := c.Rcpt("ann@example.test"); err != nil {
		return replyCode(err)
	}
	w, err := c.Data()
	if err != nil {
		return replyCode(err)
	}
	io.WriteString(w, "Subject: full\r\n\r\n"+strings.Repeat(strings.Repeat("y", 76)+"\r\n", 3000))
	if err := w.Close(); err != nil {
		return replyCode(err)
	}
	return 250, "queued"
}

func replyCode(err error) (int, string) {
	var code int
	fmt.Sscanf(err.Error(), "%d", &code)
	return code, err.Error()
}
