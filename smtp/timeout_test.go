package smtp

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// slowAll sets every timeout to long, then the one under test to short.
func slowAll(set func(*Timeouts)) *Options {
	long := 30 * time.Second
	o := &Options{Timeouts: Timeouts{Dial: long, Greeting: long, Command: long, MailRcpt: long,
		DataInit: long, DataBlock: long, DataTerm: long}}
	set(&o.Timeouts)
	return o
}

// TestEachStageHasItsTimeout: a server that stops at one stage is given
// up on after that stage's timeout, not another's: every other timeout
// is 30 s and the test context 20 s, so the error can only come from the
// one set short.
func TestEachStageHasItsTimeout(t *testing.T) {
	const short = 150 * time.Millisecond
	hang := func(r *bufio.Reader) { readUntil(r, "never") }
	cases := []struct {
		stage  string
		set    func(*Timeouts)
		script func(c net.Conn, r *bufio.Reader, stop <-chan struct{})
		big    bool // the body must fill the socket buffers
	}{
		{"greeting", func(t *Timeouts) { t.Greeting = short }, func(c net.Conn, r *bufio.Reader, stop <-chan struct{}) { hang(r) }, false},
		{"EHLO", func(t *Timeouts) { t.Command = short }, func(c net.Conn, r *bufio.Reader, stop <-chan struct{}) {
			io.WriteString(c, "220 hi\r\n")
			hang(r)
		}, false},
		{"MAIL", func(t *Timeouts) { t.MailRcpt = short }, func(c net.Conn, r *bufio.Reader, stop <-chan struct{}) {
			ehloPipelined(c, r)
			hang(r)
		}, false},
		{"DATA", func(t *Timeouts) { t.DataInit = short }, func(c net.Conn, r *bufio.Reader, stop <-chan struct{}) {
			ehloPipelined(c, r)
			for _, rep := range []string{"250 ok", "250 ok"} {
				expectLine(r)
				io.WriteString(c, rep+"\r\n")
			}
			hang(r) // never says 354
		}, false},
		{"DATA", func(t *Timeouts) { t.DataBlock = short }, func(c net.Conn, r *bufio.Reader, stop <-chan struct{}) {
			ehloPipelined(c, r)
			for _, rep := range []string{"250 ok", "250 ok", "354 go"} {
				expectLine(r)
				io.WriteString(c, rep+"\r\n")
			}
			<-stop // stops reading: the client's writes block
		}, true},
		{"DATA", func(t *Timeouts) { t.DataTerm = short }, func(c net.Conn, r *bufio.Reader, stop <-chan struct{}) {
			ehloPipelined(c, r)
			for _, rep := range []string{"250 ok", "250 ok", "354 go"} {
				expectLine(r)
				io.WriteString(c, rep+"\r\n")
			}
			readUntil(r, ".")
			hang(r) // never answers the final dot
		}, false},
	}
	for i, tc := range cases {
		t.Run(fmt.Sprint(i, tc.stage), func(t *testing.T) {
			stop := make(chan struct{})
			addr := scripted(t, func(c net.Conn, r *bufio.Reader) { tc.script(c, r, stop) })
			t.Cleanup(func() { close(stop) }) // before the server's cleanup waits for the script
			o := slowAll(tc.set)
			start := time.Now()
			c, err := Dial(ctxT(t), addr, o)
			if err == nil {
				var body io.Reader = strings.NewReader("hi")
				if tc.big {
					body = &bodyReader{max: 256 << 20}
				}
				_, err = c.Send(ctxT(t), &Envelope{From: "a@x.test", Recipients: []string{"b@y.test"}}, body)
			}
			if ce := wantConnErr(t, err, tc.stage); !ce.Timeout() || time.Since(start) < short {
				t.Fatalf("err %v after %v", err, time.Since(start))
			}
		})
	}
}

// TestStallAfterFinalDotCostsOneConnection: a go-smtp server that never
// answers one message's final dot holds that message's connection only.
// With a long DataTerm, the pool's other connection delivers 20 messages
// while the stall is certainly still on (it ends only when released);
// with a short one, the stalled message is given up on after DataTerm
// (every other timeout is 30 s).
func TestStallAfterFinalDotCostsOneConnection(t *testing.T) {
	for _, chunking := range []bool{true, false} {
		for _, dataTerm := range []time.Duration{30 * time.Second, 300 * time.Millisecond} {
			t.Run(fmt.Sprintf("chunking=%v/dataTerm=%v", chunking, dataTerm), func(t *testing.T) {
				stallScenario(t, chunking, dataTerm)
			})
		}
	}
}

func stallScenario(t *testing.T, chunking bool, dataTerm time.Duration) {
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	var once sync.Once
	releaseAll := func() { once.Do(func() { close(release) }) }
	be := &backend{hold: func(to []string) {
		if len(to) == 1 && to[0] == "stall@y.test" {
			entered <- struct{}{}
			<-release
		}
	}}
	var hide []string
	if !chunking {
		hide = []string{"CHUNKING"}
	}
	ts := startServer(t, be, hide, nil)
	t.Cleanup(releaseAll)
	o := slowAll(func(t *Timeouts) { t.DataTerm = dataTerm })
	p := NewPool(&PoolOptions{Addr: ts.Addr, Options: o, MaxConns: 2})
	t.Cleanup(func() { p.Close() })

	done := make(chan struct{})
	var stallErr error
	var stallTook time.Duration
	go func() {
		defer close(done)
		start := time.Now()
		_, stallErr = p.Send(ctxT(t), &Envelope{From: "a@x.test", Recipients: []string{"stall@y.test"}}, strings.NewReader("hi"), nil)
		stallTook = time.Since(start)
	}()
	<-entered // the server holds the stalled message now
	for i := range 20 {
		env := &Envelope{From: "a@x.test", Recipients: []string{fmt.Sprintf("r%d@y.test", i)}}
		if _, err := p.Send(ctxT(t), env, strings.NewReader("hi"), nil); err != nil {
			t.Fatalf("message %d behind a stalled one: %v", i, err)
		}
	}
	if n := len(ts.Be.messages()); n != 20 {
		t.Fatalf("%d messages delivered beside the stalled one", n)
	}
	if dataTerm > 20*time.Second {
		select {
		case <-done:
			t.Fatalf("the stalled send ended before its release: %v", stallErr)
		default:
		}
		releaseAll()
		<-done
		if stallErr != nil {
			t.Fatalf("released message: %v", stallErr)
		}
		return
	}
	<-done
	stage := "DATA"
	if chunking {
		stage = "BDAT"
	}
	if ce := wantConnErr(t, stallErr, stage); !ce.Timeout() || stallTook < dataTerm {
		t.Fatalf("stalled message: %v after %v", stallErr, stallTook)
	}
}
