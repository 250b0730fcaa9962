// Package smtpsink runs a real SMTP server (emersion/go-smtp) on a loopback
// listener for tests: it records what it receives and answers each
// recipient as a test scripts it, and can go down and come back on the same
// port to simulate an outage.
package smtpsink

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// Received is one message the sink accepted.
type Received struct {
	From string
	To   []string
	Data []byte
	// EightBit reports that MAIL gave BODY=8BITMIME.
	EightBit bool
	// DSN holds the RFC 3461 parameters the client gave (Options.DSN).
	DSN DSN
}

// DSN is what a client asked of delivery status notifications: RET and
// ENVID at MAIL, NOTIFY and ORCPT per recipient (in To's order).
type DSN struct {
	Return, EnvID string
	Notify        [][]string
	ORcpt         []string
}

// Options script the sink's behaviour. Nil funcs accept everything.
type Options struct {
	// Rcpt returns the error to answer RCPT TO with, nil to accept.
	Rcpt func(to string) error
	// Data returns the error to answer the message data with.
	Data func(from string, to []string, data []byte) error
	// Delay is slept before each reply to MAIL, RCPT and data.
	Delay time.Duration
	// MaxMessageBytes is advertised in SIZE (0: unlimited).
	MaxMessageBytes int64
	// DSN offers the DSN extension (RFC 3461) and records its parameters.
	DSN bool
	// Hide lists EHLO keywords the sink does not offer ("8BITMIME"):
	// go-smtp lists some whatever it is told, so their lines are dropped
	// from its replies on the way out.
	Hide []string
}

// Sink is a running SMTP server on 127.0.0.1.
type Sink struct {
	opts Options

	mu       sync.Mutex
	addr     string
	server   *smtp.Server
	listener net.Listener
	received []Received
	notify   chan struct{}
}

// Start runs a sink on a free loopback port.
func Start(opts Options) (*Sink, error) {
	s := &Sink{opts: opts, notify: make(chan struct{}, 1)}
	if err := s.listen("127.0.0.1:0"); err != nil {
		return nil, err
	}
	return s, nil
}

// Addr is the sink's host:port.
func (s *Sink) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

func (s *Sink) listen(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := smtp.NewServer(backend{s})
	srv.Domain = "sink.test"
	// Clients that vanish mid-session are what the tests are about.
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.MaxMessageBytes = s.opts.MaxMessageBytes
	srv.EnableSMTPUTF8 = true
	srv.EnableDSN = s.opts.DSN
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	s.mu.Lock()
	s.addr, s.server, s.listener = l.Addr().String(), srv, l
	s.mu.Unlock()
	var ln net.Listener = l
	if len(s.opts.Hide) > 0 {
		ln = hideListener{l, s.opts.Hide}
	}
	go srv.Serve(ln) //nolint:errcheck // ends with ErrServerClosed on Stop
	return nil
}

// hideListener gives connections whose writes lose the EHLO lines of the
// hidden keywords.
type hideListener struct {
	net.Listener
	hide []string
}

func (l hideListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return hideConn{c, l.hide}, nil
}

type hideConn struct {
	net.Conn
	hide []string
}

// Write drops "250-KEYWORD" lines; go-smtp writes a reply in one Write
// and never ends its EHLO reply with these keywords.
func (c hideConn) Write(p []byte) (int, error) {
	out := p
	for _, h := range c.hide {
		out = bytes.ReplaceAll(out, []byte("250-"+h+"\r\n"), nil)
	}
	if _, err := c.Conn.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Stop closes the listener and every open connection: an outage.
func (s *Sink) Stop() error {
	s.mu.Lock()
	srv, l := s.server, s.listener
	s.server, s.listener = nil, nil
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	// Closing the listener ourselves covers a Serve that has not yet
	// registered it with the server.
	l.Close()
	if err := srv.Close(); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, smtp.ErrServerClosed) {
		return err
	}
	return nil
}

// Restart brings a stopped sink back on the same port, retrying briefly
// while the old socket lingers.
func (s *Sink) Restart() error {
	var err error
	for range 50 {
		if err = s.listen(s.Addr()); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("smtpsink: restart on %s: %w", s.Addr(), err)
}

// Received returns a copy of everything accepted so far.
func (s *Sink) Received() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.received...)
}

// WaitFor waits until at least n messages were accepted or timeout passes,
// and returns how many there are.
func (s *Sink) WaitFor(n int, timeout time.Duration) int {
	deadline := time.After(timeout)
	for {
		if got := len(s.Received()); got >= n {
			return got
		}
		select {
		case <-s.notify:
		case <-deadline:
			return len(s.Received())
		}
	}
}

type backend struct{ s *Sink }

func (b backend) NewSession(*smtp.Conn) (smtp.Session, error) {
	return &session{s: b.s}, nil
}

type session struct {
	s     *Sink
	from  string
	to    []string
	eight bool
	dsn   DSN
}

func (x *session) pause() {
	if x.s.opts.Delay > 0 {
		time.Sleep(x.s.opts.Delay)
	}
}

func (x *session) Mail(from string, opts *smtp.MailOptions) error {
	x.pause()
	x.from, x.to, x.eight, x.dsn = from, nil, opts != nil && opts.Body == smtp.Body8BitMIME, DSN{}
	if opts != nil {
		x.dsn.Return, x.dsn.EnvID = string(opts.Return), opts.EnvelopeID
	}
	return nil
}

func (x *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	x.pause()
	if f := x.s.opts.Rcpt; f != nil {
		if err := f(to); err != nil {
			return err
		}
	}
	x.to = append(x.to, to)
	var notify []string
	var orcpt string
	if opts != nil {
		for _, n := range opts.Notify {
			notify = append(notify, string(n))
		}
		orcpt = opts.OriginalRecipient
	}
	x.dsn.Notify, x.dsn.ORcpt = append(x.dsn.Notify, notify), append(x.dsn.ORcpt, orcpt)
	return nil
}

func (x *session) Data(r io.Reader) error {
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, r); err != nil {
		return err
	}
	x.pause()
	if len(x.to) == 0 {
		return errors.New("no valid recipients")
	}
	if f := x.s.opts.Data; f != nil {
		if err := f(x.from, x.to, buf.Bytes()); err != nil {
			return err
		}
	}
	x.s.mu.Lock()
	x.s.received = append(x.s.received, Received{From: x.from, To: x.to, Data: buf.Bytes(), EightBit: x.eight, DSN: x.dsn})
	x.s.mu.Unlock()
	select {
	case x.s.notify <- struct{}{}:
	default:
	}
	return nil
}

func (x *session) Reset()        { x.from, x.to, x.dsn = "", nil, DSN{} }
func (x *session) Logout() error { return nil }
