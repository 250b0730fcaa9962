package submission

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"io"
	"log/slog"
	"net"
	"net/textproto"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/internal/logbuf"
	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/queue/sqlite"
)

const (
	testUser = "alice"
	testPass = "correct horse battery staple"
)

// fixture is a real server on a loopback listener over a real SQLite store.
type fixture struct {
	t      *testing.T
	store  *sqlite.Store
	dbPath string
	srv    *Server
	addr   string
	roots  *x509.CertPool
	logs   *logbuf.Buffer
	served chan error
}

// newFixture starts a server; edit adjusts its Config before New.
func newFixture(t *testing.T, edit func(*Config)) *fixture {
	t.Helper()
	f := &fixture{t: t, logs: &logbuf.Buffer{}, served: make(chan error, 1)}
	f.dbPath = filepath.Join(t.TempDir(), "outbox.db")
	st, err := sqlite.Open(f.dbPath, sqlite.Options{Queue: queue.Options{Logger: slog.New(slog.DiscardHandler)}})
	if err != nil {
		t.Fatal(err)
	}
	f.store = st
	tc, err := SelfSignedTLS("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	f.roots = x509.NewCertPool()
	f.roots.AddCert(tc.Certificates[0].Leaf)
	cfg := Config{
		Enqueuer:     EnqueueFunc(st.Enqueue),
		Users:        map[string]string{testUser: testPass},
		TLSConfig:    tc,
		Hostname:     "mx.outbox.test",
		Logger:       slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		ReadTimeout:  10 * time.Second,
		WriteTimeout: 10 * time.Second,
	}
	if edit != nil {
		edit(&cfg)
	}
	f.srv, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = l.Addr().String()
	go func() { f.served <- f.srv.Serve(l) }()
	t.Cleanup(func() {
		f.srv.Close()
		select {
		case <-f.served:
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after Close")
		}
		f.store.Close()
	})
	return f
}

// clientTLS trusts the fixture's self-signed certificate.
func (f *fixture) clientTLS() *tls.Config {
	return &tls.Config{RootCAs: f.roots, ServerName: "127.0.0.1"}
}

// stored returns how many messages the store holds, in any status.
func (f *fixture) stored() int64 {
	f.t.Helper()
	counts, err := f.store.Counts(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	var n int64
	for _, c := range counts {
		n += c
	}
	return n
}

// message returns a stored message and its body.
func (f *fixture) message(id string) (*queue.Message, []byte) {
	f.t.Helper()
	ctx := context.Background()
	m, err := f.store.Get(ctx, id)
	if err != nil {
		f.t.Fatalf("Get(%q): %v", id, err)
	}
	rc, err := f.store.OpenBody(ctx, id)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rc.Close()
	body, err := io.ReadAll(rc)
	if err != nil {
		f.t.Fatal(err)
	}
	return m, body
}

// rawClient is a hand-driven SMTP conversation, for what net/smtp cannot
// express (bare CR in commands, BDAT, pipelining).
type rawClient struct {
	t    *testing.T
	conn net.Conn
	text *textproto.Conn
}

func (f *fixture) dial() *rawClient {
	f.t.Helper()
	conn, err := net.DialTimeout("tcp", f.addr, 5*time.Second)
	if err != nil {
		f.t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	c := &rawClient{t: f.t, conn: conn, text: textproto.NewConn(conn)}
	f.t.Cleanup(func() { conn.Close() })
	c.expect(220)
	return c
}

// reply reads one (possibly multi-line) reply.
func (c *rawClient) reply() (int, string) {
	c.t.Helper()
	code, msg, err := c.text.ReadResponse(0)
	if err != nil {
		c.t.Fatalf("reading reply: %v", err)
	}
	return code, msg
}

// cmd sends one command line and returns its reply.
func (c *rawClient) cmd(line string) (int, string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, line+"\r\n"); err != nil {
		c.t.Fatal(err)
	}
	return c.reply()
}

// expect reads a reply and fails unless it has code.
func (c *rawClient) expect(code int) string {
	c.t.Helper()
	got, msg := c.reply()
	if got != code {
		c.t.Fatalf("reply %d %q, want %d", got, msg, code)
	}
	return msg
}

// must sends a command and fails unless the reply has code.
func (c *rawClient) must(line string, code int) string {
	c.t.Helper()
	got, msg := c.cmd(line)
	if got != code {
		c.t.Fatalf("%q: reply %d %q, want %d", line, got, msg, code)
	}
	return msg
}

// startTLS upgrades the conversation, trusting roots.
func (c *rawClient) startTLS(cfg *tls.Config) {
	c.t.Helper()
	c.must("STARTTLS", 220)
	tc := tls.Client(c.conn, cfg)
	if err := tc.Handshake(); err != nil {
		c.t.Fatal(err)
	}
	c.conn = tc
	c.text = textproto.NewConn(tc)
}

// authPlain is the AUTH PLAIN command line with an initial response.
func authPlain(user, pass string) string {
	return "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+pass))
}

// data sends DATA and a message (CRLF lines, dot-stuffed here) and returns
// the final reply.
func (c *rawClient) data(msg string) (int, string) {
	c.t.Helper()
	c.must("DATA", 354)
	w := c.text.DotWriter()
	io.WriteString(w, msg)
	if err := w.Close(); err != nil {
		c.t.Fatal(err)
	}
	return c.reply()
}

// queuedID takes the id out of "OK: queued as <id>".
func queuedID(t *testing.T, msg string) string {
	t.Helper()
	id, ok := strings.CutPrefix(msg, "2.0.0 OK: queued as ")
	if !ok || id == "" {
		t.Fatalf("final reply %q does not carry the queue id", msg)
	}
	return id
}

// dated is a Date and a Message-ID, for test messages whose stored bytes
// must equal what was sent: submission adds both to a message without them.
const dated = "Date: Sun, 01 Mar 2026 12:00:00 +0000\r\nMessage-ID: <test@example.com>\r\n"

// splitReceived separates the Received header the server added from the
// bytes the client sent.
func splitReceived(t *testing.T, body []byte) (string, []byte) {
	t.Helper()
	if !bytes.HasPrefix(body, []byte("Received: ")) {
		t.Fatalf("stored message does not start with a Received header: %q", body[:min(len(body), 80)])
	}
	// The header is three lines: "Received: from", "\tby ...;", "\t<date>".
	rest := body
	var hdr []byte
	for i := 0; i < 3; i++ {
		j := bytes.Index(rest, []byte("\r\n"))
		if j < 0 {
			t.Fatalf("Received header not terminated: %q", body)
		}
		hdr = append(hdr, rest[:j+2]...)
		rest = rest[j+2:]
	}
	if len(rest) > 0 && (rest[0] == '\t' || rest[0] == ' ') {
		t.Fatalf("Received header has more than three lines: %q", body)
	}
	return string(hdr), rest
}
