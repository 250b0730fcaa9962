package smtp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// sevenBit is a test-only stand-in for the message package's downgrader:
// it marks the message and writes every 8-bit byte as =XX.
func sevenBit(r io.Reader) (io.Reader, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.WriteString("X-Downgraded: yes\r\n")
	for _, c := range b {
		if c >= 0x80 {
			fmt.Fprintf(&out, "=%02X", c)
			continue
		}
		out.WriteByte(c)
	}
	return &out, nil
}

// failAfter returns n bytes of r, then err.
type failAfter struct {
	r   io.Reader
	n   int
	err error
}

func (f *failAfter) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, f.err
	}
	if len(p) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

const eightBitBody = "Subject: caf\xc3\xa9\r\n\r\nna\xc3\xafve body\r\n"

func TestDowngradeFor7BitServer(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			ts := startServer(t, nil, append([]string{"8BITMIME"}, m.hide...), nil)
			p := NewPool(&PoolOptions{Addr: ts.Addr, MaxConns: 1})
			t.Cleanup(func() { p.Close() })
			env := &Envelope{From: "a@x.test", Recipients: []string{"b@y.test"}, EightBit: true, Size: int64(len(eightBitBody))}
			res, err := p.Send(ctxT(t), env, strings.NewReader(eightBitBody), &SendOptions{Downgrade: sevenBit})
			if err != nil || !res.Downgraded {
				t.Fatalf("%v (downgraded %v)", err, res.Downgraded)
			}
			msgs := ts.Be.messages()
			want := "X-Downgraded: yes\r\nSubject: caf=C3=A9\r\n\r\nna=C3=AFve body\r\n"
			if len(msgs) != 1 || string(msgs[0].Data) != want {
				t.Fatalf("received %+v", msgs)
			}
			if msgs[0].Mail.Body != "" || msgs[0].Mail.Size != 0 {
				t.Fatalf("MAIL parameters for a downgraded body: %+v", msgs[0].Mail)
			}
			// Without a hook: refused locally for good, nothing sent.
			before := ts.received(0)
			res, err = p.Send(ctxT(t), env, strings.NewReader(eightBitBody), nil)
			var e *Error
			if !errors.As(err, &e) || e.Code != 554 || e.EnhancedCode != (EnhancedCode{5, 6, 3}) || !e.Local || !e.Permanent() ||
				!strings.Contains(err.Error(), "the server does not support 8BITMIME (decided locally") || res.Recipients[0].Err != err {
				t.Fatalf("no hook: %v", err)
			}
			if ts.received(0) != before {
				t.Fatalf("sent something for a refused message: %q", strings.TrimPrefix(ts.received(0), before))
			}
		})
	}
}

func TestNoDowngradeWhen8BitMIMEOffered(t *testing.T) {
	ts := startServer(t, nil, nil, nil)
	p := NewPool(&PoolOptions{Addr: ts.Addr})
	t.Cleanup(func() { p.Close() })
	called := false
	hook := func(r io.Reader) (io.Reader, error) { called = true; return r, nil }
	env := &Envelope{From: "a@x.test", Recipients: []string{"b@y.test"}, EightBit: true, Size: int64(len(eightBitBody))}
	res, err := p.Send(ctxT(t), env, strings.NewReader(eightBitBody), &SendOptions{Downgrade: hook})
	if err != nil || called || res.Downgraded {
		t.Fatalf("%v, hook called %v", err, called)
	}
	m := ts.Be.messages()[0]
	if string(m.Data) != eightBitBody || m.Mail.Body != "8BITMIME" || m.Mail.Size != int64(len(eightBitBody)) {
		t.Fatalf("received %q with %+v", m.Data, m.Mail)
	}
}

// TestDowngradeFailure: a downgrader that fails part-way aborts the
// transaction with a local permanent 5.6.3, never a connection failure.
// With BDAT, RSET discards what was sent and the connection is reused;
// with DATA only closing it can abort, so the next message dials anew.
// Either way the server keeps nothing of the failed message. An error of
// the body itself stays that error.
func TestDowngradeFailure(t *testing.T) {
	bad := errors.New("malformed MIME structure")
	big := "Subject: x\r\n\r\n" + strings.Repeat("caf\xc3\xa9 au lait\r\n", 400)
	for _, m := range modes {
		for _, after := range []int{10, 3000} {
			t.Run(fmt.Sprintf("%s/after=%d", m.name, after), func(t *testing.T) {
				if raceEnabled && after > 1000 && !strings.Contains(m.name, "data") {
					// go-smtp v0.25.1's server races with itself here: the Data
					// goroutine of the transaction RSET aborted mid-BDAT still
					// sends on c.dataResult (conn.go:1072) when the next BDAT
					// replaces it (conn.go:1045). The client side is exercised
					// by the same case without -race.
					t.Skip("go-smtp server data race on RSET after a partial BDAT")
				}
				ts := startServer(t, nil, append([]string{"8BITMIME"}, m.hide...), nil)
				p := NewPool(&PoolOptions{Addr: ts.Addr, MaxConns: 1, Options: &Options{ChunkSize: 1000}})
				t.Cleanup(func() { p.Close() })
				hook := func(r io.Reader) (io.Reader, error) { return &failAfter{r: r, n: after, err: bad}, nil }
				env := &Envelope{From: "a@x.test", Recipients: []string{"b@y.test", "c@y.test"}, EightBit: true}
				res, err := p.Send(ctxT(t), env, strings.NewReader(big), &SendOptions{Downgrade: hook})
				var e *Error
				if !errors.As(err, &e) || e.Code != 554 || e.EnhancedCode != (EnhancedCode{5, 6, 3}) || !e.Local ||
					errors.Is(err, ErrConnection) || !strings.Contains(err.Error(), bad.Error()) {
					t.Fatalf("err = %v", err)
				}
				for _, rr := range res.Recipients {
					if rr.Err != err {
						t.Fatalf("%s: %v", rr.Address, rr.Err)
					}
				}
				// The body's own failure is not a conversion failure.
				srcErr := errors.New("spool file unreadable")
				_, err = p.Send(ctxT(t), env, &failAfter{r: strings.NewReader(big), n: after, err: srcErr}, &SendOptions{Downgrade: sevenBit})
				if !errors.Is(err, srcErr) || errors.As(err, &e) || errors.Is(err, ErrConnection) {
					t.Fatalf("body error: %v", err)
				}
				ok := &Envelope{From: "a@x.test", Recipients: []string{"d@y.test"}}
				if _, err := p.Send(ctxT(t), ok, strings.NewReader("fine\r\n"), nil); err != nil {
					t.Fatal(err)
				}
				if msgs := ts.Be.messages(); len(msgs) != 1 || msgs[0].To[0] != "d@y.test" {
					t.Fatalf("server kept %d messages: %+v", len(msgs), msgs)
				}
				want := 1 // BDAT: RSET after the failure keeps the connection
				if strings.Contains(m.name, "data") {
					// DATA: the conversion failure after the 354 closes it; the
					// body's failure comes out of the (eager) sevenBit before
					// anything is sent.
					want = 2
				}
				if sessions := ts.sessions(); sessions != want {
					t.Fatalf("%d connections for %s", sessions, m.name)
				}
			})
		}
	}
}
