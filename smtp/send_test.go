package smtp

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	gosmtp "github.com/emersion/go-smtp"
)

// modes are the four combinations of PIPELINING and CHUNKING, obtained by
// hiding keywords from the real server's EHLO reply.
var modes = []struct {
	name string
	hide []string
}{
	{"pipelining+chunking", nil},
	{"pipelining+data", []string{"CHUNKING"}},
	{"sequential+chunking", []string{"PIPELINING"}},
	{"sequential+data", []string{"PIPELINING", "CHUNKING"}},
}

const testBody = "Subject: hi\n\nline one\n.dot line\r\nlast"

func TestSendPipelinedChunkedExactBytes(t *testing.T) {
	ts := startServer(t, nil, nil, nil)
	wc := &writeCounter{}
	var tr testTranscript
	c, err := Dial(ctxT(t), ts.Addr, &Options{Dialer: wc, Transcript: tr.hook})
	if err != nil {
		t.Fatal(err)
	}
	env := &Envelope{From: "a@x.test", Recipients: []string{"b@y.test", "c@y.test"}, Size: 40}
	for i := 0; i < 2; i++ {
		res, err := c.Send(ctxT(t), env, strings.NewReader(testBody))
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		if got := res.Accepted(); len(got) != 2 || res.Data.Code != 250 {
			t.Fatalf("send %d: accepted %v, data %v", i, got, res.Data)
		}
	}
	if _, err := c.SendAndQuit(ctxT(t), env, strings.NewReader(testBody)); err != nil {
		t.Fatal(err)
	}
	norm := "Subject: hi\r\n\r\nline one\r\n.dot line\r\nlast\r\n"
	flight := fmt.Sprintf("MAIL FROM:<a@x.test> SIZE=40\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\nBDAT %d LAST\r\n%s", len(norm), norm)
	want := "EHLO localhost\r\n" + flight + flight + flight + "QUIT\r\n"
	if got := ts.received(0); got != want {
		t.Fatalf("server received:\n%q\nwant:\n%q", got, want)
	}
	writes := wc.list()
	wantWrites := []string{"EHLO localhost\r\n", flight, flight, flight + "QUIT\r\n"}
	if fmt.Sprint(writes) != fmt.Sprint(wantWrites) {
		t.Fatalf("client writes:\n%q\nwant one write per message:\n%q", writes, wantWrites)
	}
	for _, m := range ts.Be.messages() {
		if string(m.Data) != norm {
			t.Fatalf("data %q, want %q", m.Data, norm)
		}
	}
	if s := tr.text(); !strings.Contains(s, fmt.Sprintf("C: BDAT %d LAST\nC: [body %d bytes]", len(norm), len(norm))) || strings.Contains(s, "line one") {
		t.Fatalf("transcript does not summarise the body:\n%s", s)
	}
}

func TestSendPipelinedDATAExactBytes(t *testing.T) {
	ts := startServer(t, nil, []string{"CHUNKING"}, nil)
	wc := &writeCounter{}
	c, err := Dial(ctxT(t), ts.Addr, &Options{Dialer: wc})
	if err != nil {
		t.Fatal(err)
	}
	env := &Envelope{From: "a@x.test", Recipients: []string{"b@y.test"}}
	if _, err := c.SendAndQuit(ctxT(t), env, strings.NewReader(testBody)); err != nil {
		t.Fatal(err)
	}
	cmds := "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n"
	body := "Subject: hi\r\n\r\nline one\r\n..dot line\r\nlast\r\n.\r\nQUIT\r\n"
	if got, want := ts.received(0), "EHLO localhost\r\n"+cmds+body; got != want {
		t.Fatalf("server received:\n%q\nwant:\n%q", got, want)
	}
	if w := wc.list(); len(w) != 3 || w[1] != cmds || w[2] != body {
		t.Fatalf("writes %q", w)
	}
	if m := ts.Be.messages(); len(m) != 1 || string(m[0].Data) != "Subject: hi\r\n\r\nline one\r\n.dot line\r\nlast\r\n" {
		t.Fatalf("messages %+v", m)
	}
}

func TestSendSequentialWritesOneCommandAtATime(t *testing.T) {
	ts := startServer(t, nil, []string{"PIPELINING", "CHUNKING"}, nil)
	wc := &writeCounter{}
	c, err := Dial(ctxT(t), ts.Addr, &Options{Dialer: wc})
	if err != nil {
		t.Fatal(err)
	}
	env := &Envelope{From: "a@x.test", Recipients: []string{"b@y.test", "c@y.test"}}
	if _, err := c.Send(ctxT(t), env, strings.NewReader(testBody)); err != nil {
		t.Fatal(err)
	}
	want := []string{"EHLO localhost\r\n", "MAIL FROM:<a@x.test>\r\n", "RCPT TO:<b@y.test>\r\n", "RCPT TO:<c@y.test>\r\n", "DATA\r\n"}
	if w := wc.list(); len(w) != 6 || fmt.Sprint(w[:5]) != fmt.Sprint(want) {
		t.Fatalf("writes %q", w)
	}
	if len(ts.Be.messages()) != 1 {
		t.Fatal("message not delivered")
	}
}

func TestPerRecipientResults(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			be := &backend{rcptErr: map[string]error{
				"bad@y.test":  &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "user unknown"},
				"full@y.test": &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 2, 0}, Message: "try later"},
			}}
			ts := startServer(t, be, m.hide, nil)
			c, err := Dial(ctxT(t), ts.Addr, nil)
			if err != nil {
				t.Fatal(err)
			}
			env := &Envelope{From: "a@x.test", Recipients: []string{"bad@y.test", "ok@y.test", "full@y.test"}}
			for round := 0; round < 2; round++ {
				res, err := c.Send(ctxT(t), env, strings.NewReader(testBody))
				if err != nil {
					t.Fatal(err)
				}
				checkRcptErr(t, res.Recipients[0], 550, "smtp: RCPT TO:<bad@y.test> rejected: 550 5.1.1 user unknown")
				if res.Recipients[1].Err != nil || res.Recipients[1].Reply.Code != 250 {
					t.Fatalf("ok@y.test: %+v", res.Recipients[1])
				}
				checkRcptErr(t, res.Recipients[2], 451, "smtp: RCPT TO:<full@y.test> rejected: 451 4.2.0 try later")
			}
			msgs := ts.Be.messages()
			if len(msgs) != 2 || fmt.Sprint(msgs[0].To) != "[ok@y.test]" {
				t.Fatalf("delivered %+v", msgs)
			}
		})
	}
}

func checkRcptErr(t *testing.T, rr RecipientResult, code int, text string) {
	t.Helper()
	var e *Error
	if !errors.As(rr.Err, &e) || e.Code != code || e.Error() != text {
		t.Fatalf("%s: err %v, want %q", rr.Address, rr.Err, text)
	}
	if e.Temporary() != (code/100 == 4) || e.Permanent() != (code/100 == 5) {
		t.Fatalf("%s: temporary/permanent wrong for %d", rr.Address, code)
	}
}

func TestAllRecipientsRejectedThenReuse(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			be := &backend{rcptErr: map[string]error{
				"bad@y.test": &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no"},
			}}
			ts := startServer(t, be, m.hide, nil)
			c, err := Dial(ctxT(t), ts.Addr, nil)
			if err != nil {
				t.Fatal(err)
			}
			big := strings.Repeat(strings.Repeat("x", 98)+"\r\n", 3000) // several chunks: the rest is never sent
			res, err := c.Send(ctxT(t), &Envelope{From: "a@x.test", Recipients: []string{"bad@y.test"}}, strings.NewReader(big))
			if !errors.Is(err, ErrNoRecipients) || errors.Is(err, ErrConnection) {
				t.Fatalf("err = %v", err)
			}
			checkRcptErr(t, res.Recipients[0], 550, "smtp: RCPT TO:<bad@y.test> rejected: 550 5.1.1 no")
			res, err = c.Send(ctxT(t), &Envelope{From: "a@x.test", Recipients: []string{"ok@y.test"}}, strings.NewReader(testBody))
			if err != nil || res.Recipients[0].Err != nil {
				t.Fatalf("reuse after rejection: %v", err)
			}
			if msgs := ts.Be.messages(); len(msgs) != 1 || fmt.Sprint(msgs[0].To) != "[ok@y.test]" {
				t.Fatalf("delivered %+v", msgs)
			}
		})
	}
}

func TestMailRejected(t *testing.T) {
	for _, code := range []int{451, 550} {
		for _, m := range modes {
			t.Run(fmt.Sprint(code, m.name), func(t *testing.T) {
				be := &backend{mailErr: &gosmtp.SMTPError{Code: code, EnhancedCode: gosmtp.EnhancedCode{code / 100, 7, 1}, Message: "sender refused"}}
				ts := startServer(t, be, m.hide, nil)
				c, err := Dial(ctxT(t), ts.Addr, nil)
				if err != nil {
					t.Fatal(err)
				}
				env := &Envelope{From: "a@x.test", Recipients: []string{"b@y.test", "c@y.test"}}
				res, err := c.Send(ctxT(t), env, strings.NewReader(testBody))
				var e *Error
				if !errors.As(err, &e) || e.Code != code || !strings.HasPrefix(e.Error(), "smtp: MAIL FROM:<a@x.test> rejected: ") {
					t.Fatalf("err = %v", err)
				}
				for _, rr := range res.Recipients {
					if rr.Err != err {
						t.Fatalf("%s: %v, want the MAIL error", rr.Address, rr.Err)
					}
				}
				if res.Mail == nil || res.Mail.Code != code {
					t.Fatalf("mail reply %v", res.Mail)
				}
				if err := c.Noop(ctxT(t)); err != nil {
					t.Fatalf("session not usable after rejection: %v", err)
				}
			})
		}
	}
}

func TestDataRejected(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			be := &backend{
				dataErr: &gosmtp.SMTPError{Code: 554, EnhancedCode: gosmtp.EnhancedCode{5, 6, 0}, Message: "content refused"},
				rcptErr: map[string]error{"later@y.test": &gosmtp.SMTPError{Code: 452, EnhancedCode: gosmtp.EnhancedCode{4, 5, 3}, Message: "too many"}},
			}
			ts := startServer(t, be, m.hide, nil)
			c, err := Dial(ctxT(t), ts.Addr, nil)
			if err != nil {
				t.Fatal(err)
			}
			env := &Envelope{From: "a@x.test", Recipients: []string{"b@y.test", "later@y.test"}}
			res, err := c.Send(ctxT(t), env, strings.NewReader(testBody))
			var e *Error
			if !errors.As(err, &e) || e.Code != 554 || !e.Permanent() {
				t.Fatalf("err = %v", err)
			}
			if res.Recipients[0].Err != err || res.Data == nil || res.Data.Code != 554 {
				t.Fatalf("accepted recipient: %v (data %v)", res.Recipients[0].Err, res.Data)
			}
			checkRcptErr(t, res.Recipients[1], 452, "smtp: RCPT TO:<later@y.test> rejected: 452 4.5.3 too many")
			if err := c.Noop(ctxT(t)); err != nil {
				t.Fatal(err)
			}
		})
	}
}
