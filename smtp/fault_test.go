package smtp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// ehloPipelined is a scripted server's greeting and EHLO exchange.
func ehloPipelined(c net.Conn, r *bufio.Reader, exts ...string) {
	io.WriteString(c, "220 fault.test ESMTP\r\n")
	expectLine(r)
	lines := append([]string{"fault.test"}, exts...)
	for i, l := range lines {
		sep := "-"
		if i == len(lines)-1 {
			sep = " "
		}
		io.WriteString(c, "250"+sep+l+"\r\n")
	}
}

// readUntil reads lines until one equals want (or the connection ends).
func readUntil(r *bufio.Reader, want string) {
	for i := 0; i < 1000; i++ {
		l, err := r.ReadString('\n')
		if err != nil || strings.TrimRight(l, "\r\n") == want {
			return
		}
	}
}

var env3 = &Envelope{From: "a@x.test", Recipients: []string{"b@y.test", "c@y.test", "d@y.test"}}

func fast() *Options {
	return &Options{Timeouts: Timeouts{Dial: time.Second, Greeting: time.Second, Command: time.Second,
		MailRcpt: time.Second, DataInit: time.Second, DataBlock: time.Second, DataTerm: time.Second}}
}

func wantConnErr(t *testing.T, err error, stage string) *ConnError {
	t.Helper()
	var ce *ConnError
	if !errors.As(err, &ce) || !errors.Is(err, ErrConnection) || ce.Stage != stage {
		t.Fatalf("err = %v, want a connection error during %s", err, stage)
	}
	return ce
}

func TestDropBeforeGreeting(t *testing.T) {
	addr := scripted(t, func(c net.Conn, r *bufio.Reader) {})
	_, err := Dial(ctxT(t), addr, fast())
	wantConnErr(t, err, "greeting")
}

func TestGreetingRejected(t *testing.T) {
	addr := scripted(t, func(c net.Conn, r *bufio.Reader) {
		io.WriteString(c, "554 5.7.1 go away\r\n")
		expectLine(r)
	})
	_, err := Dial(ctxT(t), addr, fast())
	var e *Error
	if !errors.As(err, &e) || e.Code != 554 || err.Error() != "smtp: greeting rejected: 554 5.7.1 go away" {
		t.Fatalf("err = %v", err)
	}
}

func TestHELOFallback(t *testing.T) {
	addr := scripted(t, func(c net.Conn, r *bufio.Reader) {
		io.WriteString(c, "220 old.test\r\n")
		if expectLine(r) != "EHLO localhost" {
			return
		}
		io.WriteString(c, "502 5.5.2 what?\r\n")
		if expectLine(r) != "HELO localhost" {
			return
		}
		io.WriteString(c, "250 old.test\r\n")
		for _, want := range []string{"MAIL FROM:<a@x.test>", "RCPT TO:<b@y.test>", "DATA"} {
			if expectLine(r) != want {
				return
			}
			if want == "DATA" {
				io.WriteString(c, "354 go\r\n")
			} else {
				io.WriteString(c, "250 ok\r\n")
			}
		}
		readUntil(r, ".")
		io.WriteString(c, "250 queued\r\n")
		expectLine(r)
	})
	c, err := Dial(ctxT(t), addr, fast())
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Send(ctxT(t), &Envelope{From: "a@x.test", Recipients: []string{"b@y.test"}}, strings.NewReader("hi"))
	if err != nil || res.Data.String() != "250 queued" {
		t.Fatalf("%v %v", res.Data, err)
	}
}

func TestDropMidDATA(t *testing.T) {
	addr := scripted(t, func(c net.Conn, r *bufio.Reader) {
		ehloPipelined(c, r, "PIPELINING")
		for i := 0; i < 5; i++ {
			expectLine(r)
		}
		io.WriteString(c, "250 ok\r\n250 ok\r\n550 5.1.1 no\r\n250 ok\r\n354 go\r\n")
		r.Read(make([]byte, 10)) // a little of the body, then hang up
	})
	c, err := Dial(ctxT(t), addr, fast())
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Send(ctxT(t), env3, &bodyReader{max: 4 << 20})
	wantConnErr(t, err, "DATA")
	if res.Recipients[0].Err != err || res.Recipients[2].Err != err {
		t.Fatalf("accepted recipients not deferred: %+v", res.Recipients)
	}
	checkRcptErr(t, res.Recipients[1], 550, "smtp: RCPT TO:<c@y.test> rejected: 550 5.1.1 no")
	if _, err := c.Send(ctxT(t), env3, strings.NewReader("x")); !errors.Is(err, ErrClientClosed) {
		t.Fatalf("broken client reused: %v", err)
	}
}

func TestDropAfterFinalDot(t *testing.T) {
	for _, chunking := range []bool{false, true} {
		t.Run(fmt.Sprint("chunking=", chunking), func(t *testing.T) {
			addr := scripted(t, func(c net.Conn, r *bufio.Reader) {
				if chunking {
					ehloPipelined(c, r, "PIPELINING", "CHUNKING")
					for i := 0; i < 4; i++ {
						expectLine(r)
					}
					r.Discard(4) // "hi\r\n"
					io.WriteString(c, "250 ok\r\n250 ok\r\n250 ok\r\n")
				} else {
					ehloPipelined(c, r, "PIPELINING")
					for i := 0; i < 4; i++ {
						expectLine(r)
					}
					io.WriteString(c, "250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n")
					readUntil(r, ".")
				}
			})
			c, err := Dial(ctxT(t), addr, fast())
			if err != nil {
				t.Fatal(err)
			}
			env := &Envelope{From: "a@x.test", Recipients: []string{"b@y.test", "c@y.test"}}
			res, err := c.Send(ctxT(t), env, strings.NewReader("hi"))
			stage := "DATA"
			if chunking {
				stage = "BDAT"
			}
			wantConnErr(t, err, stage)
			if len(res.Accepted()) != 0 || res.Recipients[0].Err != err || res.Recipients[1].Err != err {
				t.Fatalf("reported accepted without the final reply: %+v", res.Recipients)
			}
		})
	}
}

func TestStallTimesOut(t *testing.T) {
	stall := func(c net.Conn, r *bufio.Reader) {
		ehloPipelined(c, r, "PIPELINING")
		readUntil(r, "never")
	}
	addr := scripted(t, stall)
	o := fast()
	o.Timeouts.MailRcpt = 150 * time.Millisecond
	c, err := Dial(ctxT(t), addr, o)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = c.Send(ctxT(t), env3, strings.NewReader("x"))
	if ce := wantConnErr(t, err, "MAIL"); !ce.Timeout() || time.Since(start) > 2*time.Second {
		t.Fatalf("timeout: %v after %v", err, time.Since(start))
	}
	// The context bounds the command too, whatever the timeouts say.
	slow := &Options{}
	c, err = Dial(ctxT(t), addr, slow)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = c.Send(ctx, env3, strings.NewReader("x"))
	if wantConnErr(t, err, "MAIL"); time.Since(start) > 2*time.Second || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("context deadline: %v after %v", err, time.Since(start))
	}
	// Cancellation without a deadline.
	c, err = Dial(ctxT(t), addr, slow)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err = c.Send(ctx, env3, strings.NewReader("x"))
	if wantConnErr(t, err, "MAIL"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancel: %v", err)
	}
	// A server that never greets.
	silent := scripted(t, func(c net.Conn, r *bufio.Reader) { readUntil(r, "never") })
	o.Timeouts.Greeting = 100 * time.Millisecond
	_, err = Dial(ctxT(t), silent, o)
	if ce := wantConnErr(t, err, "greeting"); !ce.Timeout() {
		t.Fatalf("greeting timeout: %v", err)
	}
}

func TestHostileReplies(t *testing.T) {
	cases := []struct {
		name  string
		reply string
		want  error
	}{
		{"long line", "250 " + strings.Repeat("x", 5000) + "\r\n", ErrReplyTooLong},
		{"endless line", strings.Repeat("x", 1<<20), ErrReplyTooLong},
		{"too many lines", strings.Repeat("250-x\r\n", 500) + "250 x\r\n", ErrTooManyLines},
		{"garbage", "hello there\r\n", ErrMalformedReply},
		{"code changes", "250-a\r\n251 b\r\n", ErrMalformedReply},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr := scripted(t, func(c net.Conn, r *bufio.Reader) {
				io.WriteString(c, "220 hi\r\n")
				expectLine(r)
				io.WriteString(c, tc.reply)
				readUntil(r, "never")
			})
			_, err := Dial(ctxT(t), addr, fast())
			if wantConnErr(t, err, "EHLO"); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestServerAcceptsDATAWithoutRecipients(t *testing.T) {
	got := make(chan string, 1)
	addr := scripted(t, func(c net.Conn, r *bufio.Reader) {
		ehloPipelined(c, r, "PIPELINING")
		for i := 0; i < 3; i++ {
			expectLine(r)
		}
		io.WriteString(c, "250 ok\r\n550 no\r\n354 go ahead anyway\r\n")
		got <- expectLine(r)
		io.WriteString(c, "554 no valid recipients\r\n")
		expectLine(r)
		io.WriteString(c, "250 ok\r\n")
		readUntil(r, "never")
	})
	c, err := Dial(ctxT(t), addr, fast())
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Send(ctxT(t), &Envelope{From: "a@x.test", Recipients: []string{"b@y.test"}}, strings.NewReader("secret body"))
	if !errors.Is(err, ErrNoRecipients) {
		t.Fatalf("err = %v", err)
	}
	if l := <-got; l != "." {
		t.Fatalf("client sent %q after an unwanted 354, want the end of data only", l)
	}
	if err := c.Noop(ctxT(t)); err != nil {
		t.Fatal(err)
	}
}

func TestTempFailuresAtEachStep(t *testing.T) {
	steps := []struct {
		name    string
		replies string // replies to MAIL, RCPT, RCPT, DATA in a pipelined flight
		code    int
		stage   string
	}{
		{"mail", "421 4.3.2 shutting down\r\n", 421, "MAIL"},
		{"data", "250 ok\r\n250 ok\r\n250 ok\r\n451 4.3.0 data later\r\n", 451, "DATA"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			addr := scripted(t, func(c net.Conn, r *bufio.Reader) {
				ehloPipelined(c, r, "PIPELINING")
				for i := 0; i < 4; i++ {
					expectLine(r)
				}
				io.WriteString(c, s.replies)
			})
			c, err := Dial(ctxT(t), addr, fast())
			if err != nil {
				t.Fatal(err)
			}
			res, err := c.Send(ctxT(t), &Envelope{From: "a@x.test", Recipients: []string{"b@y.test", "c@y.test"}}, strings.NewReader("x"))
			var e *Error
			if s.code == 421 {
				// 421 then the server hangs up: every recipient gets the
				// temporary MAIL reply; the call reports the lost connection.
				if !errors.Is(err, ErrConnection) || res.Mail == nil || res.Mail.Code != 421 {
					t.Fatalf("err = %v, mail reply %v", err, res.Mail)
				}
				for _, rr := range res.Recipients {
					if !errors.As(rr.Err, &e) || e.Code != 421 || !e.Temporary() {
						t.Fatalf("%s not deferred by the MAIL reply: %v", rr.Address, rr.Err)
					}
				}
				return
			}
			if !errors.As(err, &e) || e.Code != s.code || !e.Temporary() {
				t.Fatalf("err = %v", err)
			}
			for _, rr := range res.Recipients {
				if rr.Err != err {
					t.Fatalf("%s: %v", rr.Address, rr.Err)
				}
			}
		})
	}
}

// bdatServer answers MAIL and RCPT with 250 and the k-th BDAT (from 1)
// with replies[k-1], consuming each chunk; it reports the chunk count.
func bdatServer(t *testing.T, replies []string, chunks chan<- int) string {
	return scripted(t, func(c net.Conn, r *bufio.Reader) {
		ehloPipelined(c, r, "PIPELINING", "CHUNKING")
		n := 0
		defer func() { chunks <- n }()
		for i := 0; i < 10000; i++ {
			l := expectLine(r)
			var size int
			switch {
			case strings.HasPrefix(l, "MAIL"), strings.HasPrefix(l, "RCPT"), l == "RSET", l == "NOOP":
				io.WriteString(c, "250 ok\r\n")
			case strings.HasPrefix(l, "BDAT"):
				fmt.Sscanf(l, "BDAT %d", &size)
				if _, err := r.Discard(size); err != nil {
					return
				}
				n++
				rep := "250 2.0.0 chunk ok\r\n"
				if n <= len(replies) && replies[n-1] != "" {
					rep = replies[n-1]
				}
				io.WriteString(c, rep)
			default:
				return
			}
		}
	})
}

func TestBDATChunkRejected(t *testing.T) {
	chunks := make(chan int, 1)
	addr := bdatServer(t, []string{"", "", "552 5.3.4 message too big\r\n"}, chunks)
	o := fast()
	o.ChunkSize = 1000
	c, err := Dial(ctxT(t), addr, o)
	if err != nil {
		t.Fatal(err)
	}
	env := &Envelope{From: "a@x.test", Recipients: []string{"b@y.test"}}
	res, err := c.Send(ctxT(t), env, &bodyReader{max: 20000})
	var e *Error
	if !errors.As(err, &e) || e.Code != 552 || e.Command != "BDAT" || res.Recipients[0].Err != err || res.Data != nil {
		t.Fatalf("err = %v, result %+v", err, res.Recipients)
	}
	// The session stays usable: the next message is preceded by RSET.
	if _, err := c.Send(ctxT(t), env, strings.NewReader("small")); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if n := <-chunks; n < 4 || n > 3+maxOutstandingChunks+1 {
		t.Fatalf("%d chunks sent: did not stop soon after the rejection", n)
	}
}

func TestSetupRepliesAtEachStep(t *testing.T) {
	cases := []struct {
		name   string
		policy TLSPolicy
		script []string // replies to EHLO, then to STARTTLS
		code   int      // 0: success expected
	}{
		{"ehlo 421", TLSOpportunistic, []string{"421 4.3.2 busy"}, 421},
		{"ehlo 554", TLSOpportunistic, []string{"554 5.7.1 no"}, 554},
		{"starttls 454 required", TLSRequired, []string{"250-x\r\n250 STARTTLS", "454 4.7.0 TLS not available"}, 454},
		{"starttls 454 opportunistic", TLSOpportunistic, []string{"250-x\r\n250 STARTTLS", "454 4.7.0 TLS not available"}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			after := make(chan string, 1)
			addr := scripted(t, func(c net.Conn, r *bufio.Reader) {
				io.WriteString(c, "220 hi\r\n")
				for _, rep := range tc.script {
					expectLine(r)
					io.WriteString(c, rep+"\r\n")
				}
				l := expectLine(r)
				after <- l
				if l == "QUIT" {
					io.WriteString(c, "221 bye\r\n")
				}
				readUntil(r, "never")
			})
			o := fast()
			o.StartTLS = tc.policy
			c, err := Dial(ctxT(t), addr, o)
			var e *Error
			switch {
			case tc.code == 0 && err != nil:
				t.Fatal(err)
			case tc.code == 0:
				if _, ok := c.TLS(); ok {
					t.Fatal("TLS claimed")
				}
				c.Close()
			case !errors.As(err, &e) || e.Code != tc.code || e.Local:
				t.Fatalf("err = %v, want %d", err, tc.code)
			}
			// A failed setup ends with QUIT, except after a 421: the server
			// has closed the session already.
			if l := <-after; tc.code != 0 && (l == "QUIT") != (tc.code != 421) {
				t.Fatalf("after a %d the client sent %q", tc.code, l)
			}
		})
	}
}
