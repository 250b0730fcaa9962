package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
)

// sink is the next hop: a go-smtp server on loopback that accepts
// everything, counts whole messages and keeps none of them.
type sink struct {
	srv      *smtp.Server
	ln       net.Listener
	received atomic.Int64
}

func startSink() (*sink, error) { return startSinkAt("127.0.0.1:0") }

// startSinkAt starts a sink listening on addr.
func startSinkAt(addr string) (*sink, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &sink{ln: ln}
	s.srv = smtp.NewServer(sinkBackend{s})
	s.srv.Domain = "sink.localhost"
	s.srv.ErrorLog = log.New(io.Discard, "", 0)
	s.srv.EnableSMTPUTF8 = true
	s.srv.ReadTimeout = time.Minute
	s.srv.WriteTimeout = time.Minute
	go s.srv.Serve(ln)
	return s, nil
}

func (s *sink) addr() string { return s.ln.Addr().String() }

func (s *sink) close() { s.srv.Close() }

// wait returns once n messages have arrived in all.
func (ss *sinks) wait(ctx context.Context, n int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for ss.received() < int64(n) {
		if time.Now().After(deadline) {
			return fmt.Errorf("the sinks received %d of %d messages in %s", ss.received(), n, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
	return nil
}

type sinkBackend struct{ s *sink }

func (b sinkBackend) NewSession(*smtp.Conn) (smtp.Session, error) { return &sinkSession{s: b.s}, nil }

type sinkSession struct {
	s     *sink
	rcpts int
}

func (x *sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (x *sinkSession) Rcpt(string, *smtp.RcptOptions) error { x.rcpts++; return nil }
func (x *sinkSession) Reset()                               { x.rcpts = 0 }
func (x *sinkSession) Logout() error                        { return nil }

func (x *sinkSession) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	if x.rcpts > 0 {
		x.s.received.Add(1)
	}
	return nil
}
