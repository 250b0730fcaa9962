package smtp

import (
	"fmt"
	"strings"
	"testing"

	gosmtp "github.com/emersion/go-smtp"
)

// dsnEnvelope has every DSN parameter, with characters xtext must encode.
func dsnEnvelope() *Envelope {
	return &Envelope{
		From: "a@x.test", Recipients: []string{"b@y.test", "c@y.test", "d@y.test"},
		DSNReturn: DSNReturnHeaders, EnvID: "batch 7+8=15", Notify: []string{"failure", "DELAY"},
		ORcpt: []string{"orig+b@y.test", "", "x=y@y.test"},
	}
}

// checkDSN asserts what go-smtp's parser made of the parameters: all of
// them when it offered DSN, none otherwise.
func checkDSN(t *testing.T, m received, offered bool) {
	t.Helper()
	if !offered {
		if m.Mail.Return != "" || m.Mail.EnvelopeID != "" {
			t.Fatalf("MAIL has DSN parameters the server did not offer: %+v", m.Mail)
		}
		for _, r := range m.Rcpts {
			if r.Notify != nil || r.OriginalRecipient != "" {
				t.Fatalf("RCPT has DSN parameters the server did not offer: %+v", r)
			}
		}
		return
	}
	if m.Mail.Return != gosmtp.DSNReturnHeaders || m.Mail.EnvelopeID != "batch 7+8=15" {
		t.Fatalf("MAIL options %+v", m.Mail)
	}
	wantORcpt := []string{"orig+b@y.test", "", "x=y@y.test"}
	for i, r := range m.Rcpts {
		if fmt.Sprint(r.Notify) != "[FAILURE DELAY]" || r.OriginalRecipient != wantORcpt[i] ||
			(wantORcpt[i] != "" && r.OriginalRecipientType != gosmtp.DSNAddressTypeRFC822) {
			t.Fatalf("RCPT %d options %+v", i, r)
		}
	}
}

func TestDSNParametersExactlyWhenOffered(t *testing.T) {
	for _, m := range modes {
		for _, offered := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/dsn=%v", m.name, offered), func(t *testing.T) {
				ts := startServer(t, nil, m.hide, func(s *gosmtp.Server) { s.EnableDSN = offered })
				c, err := Dial(ctxT(t), ts.Addr, nil)
				if err != nil {
					t.Fatal(err)
				}
				if ok, _ := c.Extension("DSN"); ok != offered {
					t.Fatalf("DSN offered %v", ok)
				}
				if _, err := c.SendAndQuit(ctxT(t), dsnEnvelope(), strings.NewReader(testBody)); err != nil {
					t.Fatal(err)
				}
				msgs := ts.Be.messages()
				if len(msgs) != 1 || len(msgs[0].Rcpts) != 3 {
					t.Fatalf("messages %+v", msgs)
				}
				checkDSN(t, msgs[0], offered)
			})
		}
	}
}

// TestDSNAndDowngradeSurviveRedial: a message resent on a new connection
// after the server hung up keeps its DSN parameters and its downgrade.
func TestDSNAndDowngradeSurviveRedial(t *testing.T) {
	ts := startWrapped(t, nil, []string{"8BITMIME"}, func(s *gosmtp.Server) { s.EnableDSN = true }, hangUpAfterQueued(nil))
	p := NewPool(&PoolOptions{Addr: ts.Addr, MaxConns: 1, Options: &Options{Dialer: plainDialer{}, ChunkSize: 1000}})
	t.Cleanup(func() { p.Close() })
	body := eightBitBody + strings.Repeat("d\xc3\xa9j\xc3\xa0 vu\r\n", 300)
	for i := range 3 {
		env := dsnEnvelope()
		env.EightBit = true
		var tr testTranscript
		res, err := p.Send(ctxT(t), env, strings.NewReader(body), &SendOptions{Downgrade: sevenBit, Transcript: tr.hook})
		if err != nil || !res.Downgraded {
			t.Fatalf("message %d: %v\n%s", i, err, tr.text())
		}
		if i > 0 && !strings.Contains(tr.text(), "before the first reply") {
			t.Fatalf("message %d was not resent after a redial:\n%s", i, tr.text())
		}
	}
	want, _ := sevenBit(strings.NewReader(body))
	wantBody := want.(interface{ String() string }).String()
	for i, m := range ts.Be.messages() {
		checkDSN(t, m, true)
		if string(m.Data) != wantBody {
			t.Fatalf("message %d: body differs (%d bytes, want %d)", i, len(m.Data), len(wantBody))
		}
	}
	if n := len(ts.Be.messages()); n != 3 {
		t.Fatalf("%d messages", n)
	}
}
