package submission

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"log"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	gomessage "github.com/emersion/go-message"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/outbox-mail/outbox/message/mime7"
	"github.com/outbox-mail/outbox/smtp"
)

// An 8-bit message submitted with BODY=8BITMIME, downgraded on its way
// to a real go-smtp server that does not offer 8BITMIME, arrives as 7-bit
// MIME that decodes, with go-message and with net/mail + mime/multipart,
// to what was submitted.
func TestDowngradeToServerWithout8BITMIME(t *testing.T) {
	msg := dated + "From: a@example.com\r\nTo: b@example.com\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n" +
		"--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGrüße aus Köln\r\n.line with a dot\r\n" +
		"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + strings.Repeat("ü", 700) + "\r\n" +
		"--b\r\nContent-Type: application/pdf; name=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nplain ASCII part\r\n" +
		"--b--\r\n"
	f := newFixture(t, func(c *Config) { c.AllowNoAuthOnLoopback = true; c.Users = nil })
	c := f.dial()
	c.must("EHLO client.example", 250)
	c.must("MAIL FROM:<a@example.com> BODY=8BITMIME", 250)
	c.must("RCPT TO:<b@example.com>", 250)
	code, reply := c.data(msg)
	if code != 250 {
		t.Fatalf("DATA: %d %s", code, reply)
	}
	_, stored := f.message(queuedID(t, reply))

	srv := startNo8BitServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, err := smtp.Dial(ctx, srv.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if ok, _ := client.Extension("8BITMIME"); ok {
		t.Fatal("the server offers 8BITMIME")
	}
	body, err := mime7.Downgrade(bytes.NewReader(stored))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Send(ctx, &smtp.Envelope{From: "a@example.com", Recipients: []string{"b@example.com"}}, body); err != nil {
		t.Fatal(err)
	}
	got := srv.received(t)
	for i, l := range bytes.Split(got, []byte("\r\n")) {
		if len(l) > 998 || bytes.IndexFunc(l, func(r rune) bool { return r >= 0x80 }) >= 0 {
			t.Fatalf("line %d is not 7-bit within 998 octets: %.80q", i, l)
		}
	}
	for name, decode := range map[string]func(*testing.T, []byte) []string{"go-message": leavesGoMessage, "net/mail": leavesStd} {
		want, have := decode(t, stored), decode(t, got)
		if strings.Join(have, "|") != strings.Join(want, "|") {
			t.Errorf("%s: received message decodes to %q, want %q", name, have, want)
		}
		if len(want) != 4 || !strings.Contains(want[0], "Grüße aus Köln") {
			t.Errorf("%s: the original decodes to %q", name, want)
		}
	}
}

// leavesGoMessage lists each leaf's type and decoded body, with
// emersion/go-message.
func leavesGoMessage(t *testing.T, raw []byte) []string {
	t.Helper()
	e, err := gomessage.Read(bytes.NewReader(raw))
	if err != nil && !gomessage.IsUnknownCharset(err) {
		t.Fatal(err)
	}
	var out []string
	err = e.Walk(func(_ []int, part *gomessage.Entity, err error) error {
		if err != nil || part.MultipartReader() != nil {
			return err
		}
		ct, _, _ := part.Header.ContentType()
		b, err := io.ReadAll(part.Body)
		out = append(out, ct+": "+string(b))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// leavesStd does what leavesGoMessage does with the standard library.
func leavesStd(t *testing.T, raw []byte) []string {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	_, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		var r io.Reader = p
		switch p.Header.Get("Content-Transfer-Encoding") {
		case "base64":
			r = base64.NewDecoder(base64.StdEncoding, p)
		case "quoted-printable":
			r = quotedprintable.NewReader(p)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		out = append(out, ct+": "+string(b))
	}
}

// no8BitServer is a real go-smtp server on loopback whose EHLO reply loses
// its 8BITMIME line (go-smtp always offers it).
type no8BitServer struct {
	addr string
	mu   sync.Mutex
	data [][]byte
}

func startNo8BitServer(t *testing.T) *no8BitServer {
	t.Helper()
	s := &no8BitServer{}
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(*gosmtp.Conn) (gosmtp.Session, error) { return &no8BitSession{s}, nil }))
	srv.Domain = "no8bit.test"
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = l.Addr().String()
	go srv.Serve(hide8BitListener{l})
	t.Cleanup(func() { srv.Close() })
	return s
}

func (s *no8BitServer) received(t *testing.T) []byte {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.data) != 1 {
		t.Fatalf("server received %d messages, want 1", len(s.data))
	}
	return s.data[0]
}

type no8BitSession struct{ s *no8BitServer }

func (x *no8BitSession) Mail(_ string, o *gosmtp.MailOptions) error {
	if o.Body == gosmtp.Body8BitMIME {
		return &gosmtp.SMTPError{Code: 555, EnhancedCode: gosmtp.EnhancedCode{5, 5, 4}, Message: "BODY=8BITMIME not offered"}
	}
	return nil
}
func (x *no8BitSession) Rcpt(string, *gosmtp.RcptOptions) error { return nil }
func (x *no8BitSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	x.s.mu.Lock()
	x.s.data = append(x.s.data, b)
	x.s.mu.Unlock()
	return err
}
func (x *no8BitSession) Reset()        {}
func (x *no8BitSession) Logout() error { return nil }

type hide8BitListener struct{ net.Listener }

func (l hide8BitListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	return hide8BitConn{c}, err
}

type hide8BitConn struct{ net.Conn }

func (c hide8BitConn) Write(p []byte) (int, error) {
	if _, err := c.Conn.Write(bytes.ReplaceAll(p, []byte("250-8BITMIME\r\n"), nil)); err != nil {
		return 0, err
	}
	return len(p), nil
}
