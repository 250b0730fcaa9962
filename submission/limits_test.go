package submission

import (
	"bufio"
	"io"
	"net"
	"net/netip"
	"net/textproto"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/internal/proxyproto"
	"github.com/outbox-mail/outbox/internal/throttle"
)

// dialFrom connects from a chosen loopback address (127.0.0.0/8 is all
// loopback on Linux), so tests can be several clients.
func (f *fixture) dialFrom(src string) net.Conn {
	f.t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	conn, err := d.Dial("tcp", f.addr)
	if err != nil {
		f.t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	f.t.Cleanup(func() { conn.Close() })
	return conn
}

// client wraps a connection whose greeting has not been read yet.
func (f *fixture) client(conn net.Conn) *rawClient {
	return &rawClient{t: f.t, conn: conn, text: textproto.NewConn(conn)}
}

// greeting returns the first reply line of conn.
func greeting(t *testing.T, conn net.Conn) string {
	t.Helper()
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatalf("no greeting: %v", err)
	}
	return strings.TrimSpace(line)
}

// closedAfter reports whether the server closes conn (after any replies).
func closedAfter(conn net.Conn) bool {
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, conn)
	return err == nil // EOF: closed by the server
}

func TestPerAddressCap(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxConnectionsPerIP = 3 })
	var held []net.Conn
	for range 3 {
		c := f.dialFrom("127.0.0.1")
		if g := greeting(t, c); !strings.HasPrefix(g, "220 ") {
			t.Fatalf("greeting %q", g)
		}
		held = append(held, c)
	}
	over := f.dialFrom("127.0.0.1")
	if g := greeting(t, over); !strings.HasPrefix(g, "421 4.7.0 ") {
		t.Fatalf("4th connection from one address: %q, want 421 4.7.0", g)
	}
	if !closedAfter(over) {
		t.Fatal("the refused connection was not closed")
	}
	other := f.dialFrom("127.0.0.2")
	if g := greeting(t, other); !strings.HasPrefix(g, "220 ") {
		t.Fatalf("another address was refused: %q", g)
	}
	// A slot freed is a slot given again.
	held[0].Close()
	for i := 0; ; i++ {
		c := f.dialFrom("127.0.0.1")
		g := greeting(t, c)
		if strings.HasPrefix(g, "220 ") {
			break
		}
		if i == 100 {
			t.Fatalf("a closed connection's slot never came back: %q", g)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// When every slot is held by idle, unauthenticated connections, a newcomer
// evicts the oldest and submits; when every slot is held by authenticated
// clients, it is refused.
func TestFullServerEvictsIdleStrangers(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxConnections = 4; c.AllowNoAuthOnLoopback = false })
	var idle []net.Conn
	for i := range 4 {
		c := f.dialFrom("127.0.0." + string(rune('1'+i)))
		greeting(t, c)
		idle = append(idle, c)
	}
	time.Sleep(evictMinAge + 100*time.Millisecond) // only age matters: a slow machine waits longer, never shorter
	c := f.client(f.dialFrom("127.0.0.9"))
	c.expect(220)
	c.must("EHLO client.example", 250)
	c.must(authPlain(testUser, testPass), 235)
	c.must("MAIL FROM:<a@example.com>", 250)
	c.must("RCPT TO:<b@example.com>", 250)
	if code, msg := c.data("Subject: made room\r\n\r\nx\r\n"); code != 250 {
		t.Fatalf("DATA: %d %s", code, msg)
	}
	line, _ := bufio.NewReader(idle[0]).ReadString('\n')
	if !strings.HasPrefix(line, "421 4.7.0") {
		t.Fatalf("the oldest idle connection got %q, want 421 4.7.0", line)
	}

	// Now fill every slot with authenticated clients: nobody is evictable.
	f2 := newFixture(t, func(c *Config) { c.MaxConnections = 2 })
	for i := range 2 {
		c := f2.client(f2.dialFrom("127.0.0." + string(rune('1'+i))))
		c.expect(220)
		c.must("EHLO client.example", 250)
		c.must(authPlain(testUser, testPass), 235)
	}
	time.Sleep(evictMinAge + 100*time.Millisecond)
	late := f2.dialFrom("127.0.0.5")
	if g := greeting(t, late); g != "421 4.7.0 Too busy, try again later" {
		t.Fatalf("newcomer to a full server: %q", g)
	}
}

// A client that sends its message a byte at a time is cut with 421 4.4.2,
// over plain text and over TLS, and nothing is stored.
func TestSlowDataIsCut(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		f := newFixture(t, func(c *Config) { c.MinDataRate = 1000; c.dataGrace = 300 * time.Millisecond })
		c := f.dial()
		if useTLS {
			c.startTLS(f.clientTLS())
		}
		c.must("EHLO client.example", 250)
		c.must(authPlain(testUser, testPass), 235)
		c.must("MAIL FROM:<a@example.com>", 250)
		c.must("RCPT TO:<b@example.com>", 250)
		c.must("DATA", 354)
		got := make(chan string, 1)
		go func() {
			code, msg, err := c.text.ReadResponse(0)
			if err != nil {
				got <- err.Error()
				return
			}
			got <- strings.TrimSpace(strconv.Itoa(code) + " " + msg)
		}()
		var reply string
	trickle:
		for range 200 { // 200 bytes at 20/s is 10 s, far past the 300 ms grace
			select {
			case reply = <-got:
				break trickle
			case <-time.After(50 * time.Millisecond):
				c.conn.Write([]byte("x"))
			}
		}
		if reply != "421 4.4.2 Data arriving too slowly, closing connection" {
			t.Fatalf("tls=%v: slow DATA got %q", useTLS, reply)
		}
		if n := f.stored(); n != 0 {
			t.Fatalf("tls=%v: %d messages stored from a cut transfer", useTLS, n)
		}
	}
}

// BDAT is held to the same rate, and a chunk cut short is never stored.
func TestSlowBDATIsCut(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MinDataRate = 1000; c.dataGrace = 300 * time.Millisecond })
	c := f.dial()
	c.must("EHLO client.example", 250)
	c.must(authPlain(testUser, testPass), 235)
	c.must("MAIL FROM:<a@example.com>", 250)
	c.must("RCPT TO:<b@example.com>", 250)
	io.WriteString(c.conn, "BDAT 100000 LAST\r\nSubject: slow\r\n\r\n")
	deadline := time.Now().Add(15 * time.Second)
	var line string
	br := bufio.NewReader(c.conn)
	for time.Now().Before(deadline) {
		c.conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if l, err := br.ReadString('\n'); err == nil {
			line = strings.TrimSpace(l)
			break
		}
		c.conn.Write([]byte("x"))
	}
	if line != "421 4.4.2 Data arriving too slowly, closing connection" {
		t.Fatalf("slow BDAT got %q", line)
	}
	if n := f.stored(); n != 0 {
		t.Fatalf("%d messages stored from a cut chunk", n)
	}
}

func TestSessionAndMailDeadlines(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MailTimeout = 300 * time.Millisecond })
	c := f.dial()
	c.must("EHLO client.example", 250)
	if code, msg := c.reply(); code != 421 || msg != "4.4.2 No transaction started in time, closing connection" {
		t.Fatalf("idle before MAIL: %d %q", code, msg)
	}
	// A client that keeps talking but never starts a transaction is cut too.
	c = f.dial()
	var code int
	var msg string
	for range 100 {
		code, msg = c.cmd("NOOP")
		if code != 250 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code != 421 {
		t.Fatalf("NOOPs past the MAIL deadline: %d %q", code, msg)
	}

	f = newFixture(t, func(c *Config) { c.SessionTimeout = 500 * time.Millisecond })
	c = f.dial()
	c.must("EHLO client.example", 250)
	c.must(authPlain(testUser, testPass), 235)
	for range 100 {
		code, msg = c.cmd("NOOP")
		if code != 250 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code != 421 || msg != "4.4.2 Session time limit reached, closing connection" {
		t.Fatalf("past the session limit: %d %q", code, msg)
	}
}

func TestProxyProtocol(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.ProxyProtocol = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		c.AllowNoAuthOnLoopback = true
		c.Users = nil
		c.MaxConnectionsPerIP = 1
	})
	viaProxy := func(h proxyproto.Header) *rawClient {
		conn := f.dialFrom("127.0.0.1")
		conn.Write(h.Format())
		c := f.client(conn)
		c.expect(220)
		c.must("EHLO client.example", 250)
		return c
	}
	src := func(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
	dst := src("127.0.0.1:2525")

	// A remote client behind the proxy is not loopback: no mail without AUTH.
	remote := viaProxy(proxyproto.Header{Version: 1, Source: src("192.0.2.9:40000"), Destination: dst})
	remote.must("MAIL FROM:<a@example.com>", 530)
	// Its address counts against its own cap, not the proxy's.
	conn := f.dialFrom("127.0.0.1")
	conn.Write((&proxyproto.Header{Version: 2, Source: src("192.0.2.9:40001"), Destination: dst}).Format())
	if g := greeting(t, conn); !strings.HasPrefix(g, "421 4.7.0 ") {
		t.Fatalf("second connection of 192.0.2.9 through the proxy: %q", g)
	}
	// A loopback client behind the proxy is loopback; its Received header
	// names it.
	local := viaProxy(proxyproto.Header{Version: 2, Source: src("127.0.0.7:40002"), Destination: dst})
	local.must("MAIL FROM:<a@example.com>", 250)
	local.must("RCPT TO:<b@example.com>", 250)
	code, msg := local.data("Subject: proxied\r\n\r\nx\r\n")
	if code != 250 {
		t.Fatalf("DATA: %d %s", code, msg)
	}
	_, body := f.message(queuedID(t, msg))
	if hdr, _ := splitReceived(t, body); !strings.Contains(hdr, "[127.0.0.7]") {
		t.Fatalf("Received header does not name the real client: %q", hdr)
	}
	// A header that names nobody (the proxy's own health check) is never
	// loopback.
	anon := viaProxy(proxyproto.Header{Version: 2, Local: true})
	anon.must("MAIL FROM:<a@example.com>", 530)
	// The trusted proxy must send a header; the greeting is not sent
	// before it, and garbage ends the connection.
	bad := f.dialFrom("127.0.0.1")
	bad.Write([]byte("EHLO client.example\r\n"))
	if data, _ := io.ReadAll(bad); len(data) != 0 {
		t.Fatalf("a connection from the proxy without a header got %q", data)
	}
	// Anyone else is served directly and may not send a header.
	direct := f.client(f.dialFrom("127.0.0.2"))
	direct.expect(220)
	if code, _ := direct.cmd(strings.TrimSpace(string((&proxyproto.Header{Version: 1, Source: src("127.0.0.1:1"), Destination: dst}).Format()))); code/100 != 5 {
		t.Fatalf("a PROXY line from an untrusted client was not refused: %d", code)
	}
}

func TestSenderBinding(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.Senders = map[string][]string{testUser: {"*@example.com", "billing@example.net"}}
	})
	c := f.dial()
	c.must("EHLO client.example", 250)
	c.must(authPlain(testUser, testPass), 235)
	for from, want := range map[string]int{
		"app@example.com": 250, "App@EXAMPLE.com": 250, "billing@example.net": 250,
		"other@example.net": 553, "app@example.com.evil.test": 553, "": 553,
	} {
		code, msg := c.cmd("MAIL FROM:<" + from + ">")
		if code != want {
			t.Errorf("MAIL FROM:<%s>: %d %s, want %d", from, code, msg, want)
		}
		if code == 553 && !strings.HasPrefix(msg, "5.7.1 ") {
			t.Errorf("MAIL FROM:<%s>: %q, want 5.7.1", from, msg)
		}
		c.must("RSET", 250)
	}
	if _, err := New(Config{Enqueuer: f.srv.cfg.Enqueuer, Users: map[string]string{"a": "b"},
		Senders: map[string][]string{"a": {"no-at-sign"}}}); err == nil {
		t.Error("a sender pattern without @ was accepted")
	}
}

func TestGlobFold(t *testing.T) {
	for _, tc := range []struct {
		p, s string
		want bool
	}{
		{"*@example.com", "a@example.com", true},
		{"*@example.com", "a@example.comx", false},
		{"*@*.example.com", "a@mx.example.com", true},
		{"*@*.example.com", "a@example.com", false},
		{"a*b*c@x", "aXXbYYc@x", true},
		{"a*b*c@x", "aXXbYY@x", false},
		{"*", "", true},
		{"exact@x", "EXACT@X", true},
	} {
		if got := globFold(tc.p, tc.s); got != tc.want {
			t.Errorf("globFold(%q, %q) = %v", tc.p, tc.s, got)
		}
	}
}

// Guessing over fresh connections is refused with 454 4.7.0 after a few
// failures, while the right password from another address goes through.
func TestAuthThrottle(t *testing.T) {
	var th *throttle.Throttle
	f := newFixture(t, func(c *Config) {
		th = throttle.New(throttle.Config{FreeFailures: 2, BlockAfter: 4, BaseDelay: time.Millisecond,
			MaxDelay: 2 * time.Millisecond, Logger: c.Logger})
		c.Throttle = th
	})
	var codes []int
	for range 6 {
		c := f.client(f.dialFrom("127.0.0.1"))
		c.expect(220)
		c.must("EHLO client.example", 250)
		code, _ := c.cmd(authPlain(testUser, "guess"))
		codes = append(codes, code)
	}
	want := []int{535, 535, 535, 535, 454, 454}
	for i := range want {
		if codes[i] != want[i] {
			t.Fatalf("replies to guesses %v, want %v", codes, want)
		}
	}
	// Even the right password is refused from the blocked address...
	c := f.client(f.dialFrom("127.0.0.1"))
	c.expect(220)
	c.must("EHLO client.example", 250)
	if msg := c.must(authPlain(testUser, testPass), 454); !strings.Contains(msg, "try again in") {
		t.Fatalf("refusal %q does not say when to retry", msg)
	}
	// ...but not from another one.
	c = f.client(f.dialFrom("127.0.0.2"))
	c.expect(220)
	c.must("EHLO client.example", 250)
	c.must(authPlain(testUser, testPass), 235)
	th.Flush()
	logs := f.logs.String()
	if n := strings.Count(logs, "auth: failed attempts"); n != 1 {
		t.Fatalf("%d summary lines, want 1:\n%s", n, logs)
	}
	if strings.Contains(logs, "level=WARN msg=\"submission: authentication failed") {
		t.Fatal("each failure still logs a WARN")
	}
}
