package smtp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

// hangUpAfterQueued makes the real server close the connection silently
// right after it has accepted a message, as some relays do to every
// connection after one message. closed, when not nil, hears of each close.
func hangUpAfterQueued(closed chan<- struct{}) func(net.Conn) net.Conn {
	return func(c net.Conn) net.Conn { return &hangUp{Conn: c, closed: closed} }
}

type hangUp struct {
	net.Conn
	closed chan<- struct{}
}

func (h *hangUp) Write(p []byte) (int, error) {
	n, err := h.Conn.Write(p)
	if bytes.Contains(p, []byte("OK: queued")) {
		h.Conn.Close()
		if h.closed != nil {
			h.closed <- struct{}{}
		}
	}
	return n, err
}

// plainDialer dials through a wrapper that hides the socket, so the
// pool's idle check cannot peek at it and only the redial can help.
type plainDialer struct{}

type hiddenSocket struct{ net.Conn }

func (plainDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return hiddenSocket{c}, nil
}

// numbered is message i's body: larger than one 1000-byte chunk, so that
// a resend after BDAT must carry the chunk already read.
func numbered(i int) string {
	return fmt.Sprintf("Subject: %d\r\n\r\n%s\r\n", i, strings.Repeat(fmt.Sprintf("line of message %d\r\n", i), 200))
}

// TestPoolServerClosesAfterEachMessage: a relay that hangs up silently
// after every message never costs a message its first Send, in every
// mode; with the socket hidden from the idle check, the redial before
// the first reply is what saves each message, body intact.
func TestPoolServerClosesAfterEachMessage(t *testing.T) {
	for _, m := range modes {
		for _, hidden := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/hidden=%v", m.name, hidden), func(t *testing.T) {
				ts := startWrapped(t, nil, m.hide, nil, hangUpAfterQueued(nil))
				o := &Options{ChunkSize: 1000}
				if hidden {
					o.Dialer = plainDialer{}
				}
				p := NewPool(&PoolOptions{Addr: ts.Addr, Options: o, MaxConns: 1})
				t.Cleanup(func() { p.Close() })
				const n = 12
				redials := 0
				for i := range n {
					var tr testTranscript
					env := &Envelope{From: "a@x.test", Recipients: []string{fmt.Sprintf("r%d@y.test", i)}}
					res, err := p.Send(ctxT(t), env, strings.NewReader(numbered(i)), &SendOptions{Transcript: tr.hook})
					if err != nil || len(res.Accepted()) != 1 {
						t.Fatalf("message %d failed on its first Send: %v\n%s", i, err, tr.text())
					}
					if strings.Contains(tr.text(), "before the first reply") {
						redials++
					}
				}
				msgs := ts.Be.messages()
				if len(msgs) != n {
					t.Fatalf("%d messages delivered, want %d", len(msgs), n)
				}
				for i, msg := range msgs {
					if string(msg.Data) != numbered(i) || msg.To[0] != fmt.Sprintf("r%d@y.test", i) {
						t.Fatalf("message %d arrived altered: %d bytes to %v", i, len(msg.Data), msg.To)
					}
				}
				if hidden && redials != n-1 {
					t.Fatalf("%d redials before the first reply, want %d (one per reused connection)", redials, n-1)
				}
			})
		}
	}
}

// TestIdleCheckSeesClose: the checkout check finds a connection the
// server closed without writing to it, and leaves a live one alone.
func TestIdleCheckSeesClose(t *testing.T) {
	closed := make(chan struct{}, 1)
	ts := startWrapped(t, nil, nil, nil, hangUpAfterQueued(closed))
	live := startServer(t, nil, nil, nil)
	c, err := Dial(ctxT(t), live.Addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	env := &Envelope{From: "a@x.test", Recipients: []string{"b@y.test"}}
	if _, err := c.Send(ctxT(t), env, strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	if c.peerGone() {
		t.Fatal("a live idle connection was judged dead")
	}
	if _, err := c.Send(ctxT(t), env, strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	d, err := Dial(ctxT(t), ts.Addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Send(ctxT(t), env, strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	<-closed
	gone := false
	for i := 0; i < 2000 && !gone; i++ { // the FIN crosses loopback at once; bounded anyway
		if gone = d.peerGone(); !gone {
			time.Sleep(time.Millisecond)
		}
	}
	if !gone {
		t.Fatal("a connection the server closed was not seen as gone")
	}
	if got := ts.received(0); strings.Contains(got, "RSET") || strings.Contains(got, "NOOP") {
		t.Fatalf("the check wrote to the connection: %q", got)
	}
}

// TestPool421TakesConnectionOut: a 421 at any stage ends the session even
// when the server (here go-smtp answering with a backend's 421) keeps the
// connection open; the recipients are deferred with the 421 and the next
// message gets a new connection.
func TestPool421TakesConnectionOut(t *testing.T) {
	e421 := &gosmtp.SMTPError{Code: 421, EnhancedCode: gosmtp.EnhancedCode{4, 3, 2}, Message: "going down"}
	cases := []struct {
		name string
		be   func() *backend
		env  *Envelope
	}{
		{"rcpt", func() *backend { return &backend{rcptErr: map[string]error{"busy@y.test": e421}} }, &Envelope{From: "a@x.test", Recipients: []string{"busy@y.test", "ok@y.test"}}},
		{"data", func() *backend { return &backend{dataErr: e421} }, &Envelope{From: "a@x.test", Recipients: []string{"ok@y.test"}}},
		{"mail", func() *backend { return &backend{mailErr: e421} }, &Envelope{From: "a@x.test", Recipients: []string{"ok@y.test"}}},
	}
	for _, m := range modes {
		for _, tc := range cases {
			t.Run(m.name+"/"+tc.name, func(t *testing.T) {
				be := tc.be()
				ts := startServer(t, be, m.hide, nil)
				p := NewPool(&PoolOptions{Addr: ts.Addr, MaxConns: 1})
				t.Cleanup(func() { p.Close() })
				res, err := p.Send(ctxT(t), tc.env, strings.NewReader(testBody), nil)
				var e *Error
				if !errors.Is(err, ErrConnection) || !errors.As(err, &e) || e.Code != 421 {
					t.Fatalf("err = %v, want the session ended by the 421", err)
				}
				for _, rr := range res.Recipients {
					if !errors.As(rr.Err, &e) || e.Code != 421 || !e.Temporary() {
						t.Fatalf("%s: %v, want deferred by the 421", rr.Address, rr.Err)
					}
				}
				be.mu.Lock()
				be.rcptErr, be.dataErr, be.mailErr = nil, nil, nil
				be.mu.Unlock()
				if _, err := p.Send(ctxT(t), tc.env, strings.NewReader(testBody), nil); err != nil {
					t.Fatal(err)
				}
				if n := ts.sessions(); n != 2 {
					t.Fatalf("%d connections, want a new one after the 421", n)
				}
			})
		}
	}
}

// TestPoolRedialThroughDialHook: the redial of a connection the server
// closed goes through the pool's Dial hook, and the result names the
// server that took the message.
func TestPoolRedialThroughDialHook(t *testing.T) {
	ts := startWrapped(t, nil, nil, nil, hangUpAfterQueued(nil))
	var mu sync.Mutex
	dials := 0
	p := NewPool(&PoolOptions{MaxConns: 1, Dial: func(ctx context.Context, tr Transcript) (*Client, error) {
		mu.Lock()
		dials++
		mu.Unlock()
		return DialTraced(ctx, ts.Addr, &Options{Dialer: plainDialer{}}, tr)
	}})
	t.Cleanup(func() { p.Close() })
	for i := range 3 {
		env := &Envelope{From: "a@x.test", Recipients: []string{fmt.Sprintf("r%d@y.test", i)}}
		res, err := p.Send(ctxT(t), env, strings.NewReader("hello"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Server != "127.0.0.1" || res.RemoteAddr == nil || res.RemoteAddr.String() != ts.Addr || res.TLS {
			t.Fatalf("result names %q %v (TLS %v), want the server dialled", res.Server, res.RemoteAddr, res.TLS)
		}
	}
	if dials != 3 || len(ts.Be.messages()) != 3 {
		t.Fatalf("%d dials, %d messages", dials, len(ts.Be.messages()))
	}
}

// TestNoRedialOnTimeoutOrFreshConnection: only a reused connection that
// fails before the first reply is retried; a hung server is not.
func TestNoRedialOnTimeoutOrFreshConnection(t *testing.T) {
	addr := scripted(t, func(c net.Conn, r *bufio.Reader) {
		ehloPipelined(c, r, "PIPELINING")
		readUntil(r, "never") // never answers MAIL
	})
	o := fast()
	o.Timeouts.MailRcpt = 100 * time.Millisecond
	p := NewPool(&PoolOptions{Addr: addr, Options: o, MaxConns: 1})
	t.Cleanup(func() { p.Close() })
	var tr testTranscript
	_, err := p.Send(ctxT(t), env3, strings.NewReader("x"), &SendOptions{Transcript: tr.hook})
	if ce := wantConnErr(t, err, "MAIL"); !ce.Timeout() || strings.Count(tr.text(), "S: 220") != 1 {
		t.Fatalf("err %v; transcript:\n%s", err, tr.text())
	}
}

// TestPool421OnReuseResends: a server that answers the first command on
// a reused connection with 421 (it timed the session out) costs the
// message nothing: it goes on a new connection within the same Send.
func TestPool421OnReuseResends(t *testing.T) {
	var mu sync.Mutex
	conns := 0
	addr := scripted(t, func(c net.Conn, r *bufio.Reader) {
		mu.Lock()
		conns++
		first := conns == 1
		mu.Unlock()
		ehloPipelined(c, r, "PIPELINING")
		mails := 0
		for i := 0; i < 100; i++ {
			switch l := expectLine(r); {
			case strings.HasPrefix(l, "MAIL") && first && mails == 1:
				io.WriteString(c, "421 4.4.2 idle too long, closing\r\n")
				return
			case strings.HasPrefix(l, "MAIL"):
				mails++
				io.WriteString(c, "250 ok\r\n")
			case l == "DATA":
				io.WriteString(c, "354 go\r\n")
				readUntil(r, ".")
				io.WriteString(c, "250 2.0.0 queued\r\n")
			case l == "", l == "QUIT":
				return
			default:
				io.WriteString(c, "250 ok\r\n")
			}
		}
	})
	p := NewPool(&PoolOptions{Addr: addr, Options: &Options{Dialer: plainDialer{}}, MaxConns: 1})
	t.Cleanup(func() { p.Close() })
	env := &Envelope{From: "a@x.test", Recipients: []string{"b@y.test"}}
	if _, err := p.Send(ctxT(t), env, strings.NewReader("one"), nil); err != nil {
		t.Fatal(err)
	}
	var tr testTranscript
	res, err := p.Send(ctxT(t), env, strings.NewReader("two"), &SendOptions{Transcript: tr.hook})
	if err != nil || res.Data == nil || res.Data.Code != 250 {
		t.Fatalf("%v\n%s", err, tr.text())
	}
	if s := tr.text(); !strings.Contains(s, "S: 421 4.4.2") || !strings.Contains(s, "before the first reply") || strings.Count(s, "S: 220") != 1 {
		t.Fatalf("transcript:\n%s", s)
	}
}
