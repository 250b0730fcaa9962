package mime7

import (
	"bytes"
	"io"
	"log"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

// sevenBitServer is a real go-smtp server on loopback that does not
// offer 8BITMIME: go-smtp always lists it, so the EHLO reply loses that
// line on its way out (hideConn). It keeps what it receives.
type sevenBitServer struct {
	addr string
	mu   sync.Mutex
	got  [][]byte
	ehlo string
}

func startSevenBitServer(t *testing.T) *sevenBitServer {
	t.Helper()
	s := &sevenBitServer{}
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(*gosmtp.Conn) (gosmtp.Session, error) { return &sink{s: s}, nil }))
	srv.Domain = "seven.test"
	srv.AllowInsecureAuth = true
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = l.Addr().String()
	go srv.Serve(hideListener{l})
	t.Cleanup(func() { srv.Close() })
	return s
}

type sink struct{ s *sevenBitServer }

func (x *sink) Mail(string, *gosmtp.MailOptions) error { return nil }
func (x *sink) Rcpt(string, *gosmtp.RcptOptions) error { return nil }
func (x *sink) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	x.s.mu.Lock()
	x.s.got = append(x.s.got, b)
	x.s.mu.Unlock()
	return err
}
func (x *sink) Reset()        {}
func (x *sink) Logout() error { return nil }

type hideListener struct{ net.Listener }

func (l hideListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	return hideConn{c}, err
}

// hideConn drops the 8BITMIME line from what the server writes.
type hideConn struct{ net.Conn }

func (c hideConn) Write(p []byte) (int, error) {
	if _, err := c.Conn.Write(bytes.ReplaceAll(p, []byte("250-8BITMIME\r\n"), nil)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// TestDowngradeToSevenBitServer sends 8-bit messages, downgraded, to a
// server without 8BITMIME, and checks that what it received is 7-bit
// MIME decoding, with both parsers, to the original's content.
func TestDowngradeToSevenBitServer(t *testing.T) {
	srv := startSevenBitServer(t)
	big := strings.Repeat("Grüße aus Köln, eine lange Zeile nach der anderen. ", 20) + "\r\n"
	msgs := []string{
		"From: a@example.com\r\nTo: b@example.net\r\nSubject: plain\r\n\r\nGrüße\r\n.dot line\r\n",
		multipartMsg(sevenBitPart,
			"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"+strings.Repeat(big, 3000),
			b64Part,
			"Content-Type: text/html; charset=utf-8\r\n\r\n<p>"+longLine+"é</p>\r\n",
			"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n\r\nSubject: fwd\r\n\r\n日本語\r\n"),
	}
	c, err := gosmtp.Dial(srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("8BITMIME"); ok {
		t.Fatal("the server offers 8BITMIME")
	}
	for _, msg := range msgs {
		body, err := Downgrade(strings.NewReader(msg))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.SendMail("a@example.com", []string{"b@example.net"}, body); err != nil {
			t.Fatal(err)
		}
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.got) != len(msgs) {
		t.Fatalf("server got %d messages, want %d", len(srv.got), len(msgs))
	}
	for i, msg := range msgs {
		check7bit(t, srv.got[i], false)
		sameContent(t, msg, srv.got[i])
	}
}
