package smtp

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

func TestPoolConcurrent(t *testing.T) {
	ts := startServer(t, nil, nil, nil)
	p := NewPool(&PoolOptions{Addr: ts.Addr, MaxConns: 3, MaxMessages: 1000})
	t.Cleanup(func() { p.Close() })
	var wg sync.WaitGroup
	errs := make(chan error, 60)
	for g := 0; g < 12; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				env := &Envelope{From: "a@x.test", Recipients: []string{fmt.Sprintf("r%d-%d@y.test", g, i)}}
				var tr testTranscript
				res, err := p.Send(ctxT(t), env, strings.NewReader("hello"), &SendOptions{Transcript: tr.hook})
				if err == nil && len(res.Accepted()) != 1 {
					err = fmt.Errorf("not accepted: %+v", res)
				}
				if s := tr.text(); err == nil && (strings.Count(s, "RCPT TO:") != 1 || !strings.Contains(s, env.Recipients[0])) {
					err = fmt.Errorf("per-call transcript wrong:\n%s", s)
				}
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := len(ts.Be.messages()); n != 60 {
		t.Fatalf("%d messages delivered", n)
	}
	ts.Be.mu.Lock()
	s := ts.Be.sessions
	ts.Be.mu.Unlock()
	if s > 3 || s < 1 {
		t.Fatalf("%d connections for MaxConns 3", s)
	}
}

func TestPoolLimitsAndProbe(t *testing.T) {
	ts := startServer(t, nil, nil, func(s *gosmtp.Server) { s.ReadTimeout = 700 * time.Millisecond })
	p := NewPool(&PoolOptions{Addr: ts.Addr, MaxConns: 1, MaxMessages: 2, ProbeAfter: time.Millisecond})
	t.Cleanup(func() { p.Close() })
	env := &Envelope{From: "a@x.test", Recipients: []string{"b@y.test"}}
	send := func() string {
		var tr testTranscript
		if _, err := p.Send(ctxT(t), env, strings.NewReader("x"), &SendOptions{Transcript: tr.hook}); err != nil {
			t.Fatal(err)
		}
		return tr.text()
	}
	if s := send(); !strings.Contains(s, "C: EHLO") {
		t.Fatalf("first send did not dial:\n%s", s)
	}
	time.Sleep(5 * time.Millisecond)
	if s := send(); strings.Contains(s, "C: EHLO") || !strings.Contains(s, "C: NOOP") {
		t.Fatalf("second send should probe and reuse:\n%s", s)
	}
	if s := send(); !strings.Contains(s, "C: EHLO") {
		t.Fatalf("MaxMessages 2 not applied:\n%s", s)
	}
	time.Sleep(1500 * time.Millisecond) // the server drops the idle connection
	// Found dead at checkout without a round trip: no NOOP on it.
	if s := send(); strings.Contains(s, "C: NOOP") || !strings.Contains(s, "closed by the server while idle") || !strings.Contains(s, "C: EHLO") {
		t.Fatalf("dead idle connection not replaced at checkout:\n%s", s)
	}
	if len(ts.Be.messages()) != 4 {
		t.Fatal("messages lost")
	}
}

func TestPoolIdleTimeoutAndClose(t *testing.T) {
	ts := startServer(t, nil, nil, nil)
	p := NewPool(&PoolOptions{Addr: ts.Addr, IdleTimeout: 50 * time.Millisecond})
	env := &Envelope{From: "a@x.test", Recipients: []string{"b@y.test"}}
	if _, err := p.Send(ctxT(t), env, strings.NewReader("x"), nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		p.mu.Lock()
		n := len(p.idle)
		p.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("idle connection not closed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The pool has let go; the server reads the QUIT in its own time.
	for i := 0; i < 200 && !strings.HasSuffix(ts.received(0), "QUIT\r\n"); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.HasSuffix(ts.received(0), "QUIT\r\n") {
		t.Fatalf("no QUIT on idle close: %q", ts.received(0))
	}
	p.Close()
	res, err := p.Send(ctxT(t), env, strings.NewReader("x"), nil)
	if !errors.Is(err, ErrPoolClosed) || res.Recipients[0].Err != err {
		t.Fatalf("after close: %v", err)
	}
}

func TestPoolDialFailure(t *testing.T) {
	p := NewPool(&PoolOptions{Addr: "127.0.0.1:1", Options: fast()})
	t.Cleanup(func() { p.Close() })
	res, err := p.Send(ctxT(t), env3, strings.NewReader("x"), nil)
	if !errors.Is(err, ErrConnection) || len(res.Recipients) != 3 || res.Recipients[2].Err != err {
		t.Fatalf("err = %v, %+v", err, res)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Send(ctx, env3, strings.NewReader("x"), nil); !errors.Is(err, ErrConnection) {
		t.Fatalf("cancelled: %v", err)
	}
}

// TestPoolDialHook: a pool with a Dial hook makes its connections through
// it (as a destination walking an MX set does), with the per-message
// transcript seeing the greeting, and reuses them like any other.
func TestPoolDialHook(t *testing.T) {
	ts := startServer(t, nil, nil, nil)
	var mu sync.Mutex
	dials := 0
	p := NewPool(&PoolOptions{MaxConns: 1, Dial: func(ctx context.Context, tr Transcript) (*Client, error) {
		mu.Lock()
		dials++
		mu.Unlock()
		return DialTraced(ctx, ts.Addr, nil, tr)
	}})
	t.Cleanup(func() { p.Close() })
	for i := range 3 {
		var tr testTranscript
		env := &Envelope{From: "a@x.test", Recipients: []string{fmt.Sprintf("r%d@y.test", i)}}
		if _, err := p.Send(ctxT(t), env, strings.NewReader("hello"), &SendOptions{Transcript: tr.hook}); err != nil {
			t.Fatal(err)
		}
		if i == 0 && !strings.Contains(tr.text(), "S: 220") {
			t.Fatalf("first message's transcript lacks the greeting:\n%s", tr.text())
		}
	}
	if dials != 1 {
		t.Fatalf("%d dials through the hook for 3 messages on one reused connection", dials)
	}
	if n := len(ts.Be.messages()); n != 3 {
		t.Fatalf("%d messages delivered", n)
	}
}
