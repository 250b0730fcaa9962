package smtp

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/outbox-mail/outbox/internal/crlf"
)

func TestMailParameters(t *testing.T) {
	ts := startServer(t, nil, nil, func(s *gosmtp.Server) {
		s.EnableSMTPUTF8 = true
		s.EnableDSN = true
		s.MaxMessageBytes = 1 << 20
	})
	c, err := Dial(ctxT(t), ts.Addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxMessageSize() != 1<<20 {
		t.Fatalf("SIZE %d", c.MaxMessageSize())
	}
	env := &Envelope{
		From: "jörg@x.test", Recipients: []string{"b@y.test", "c@y.test"}, Size: 100,
		UTF8: true, EightBit: true, DSNReturn: DSNReturnHeaders, EnvID: "id+1=2",
		Notify: []string{"FAILURE", "DELAY"}, ORcpt: []string{"orig@y.test"},
	}
	if _, err := c.Send(ctxT(t), env, strings.NewReader("Subject: é\r\n\r\nbody\r\n")); err != nil {
		t.Fatal(err)
	}
	m := ts.Be.messages()[0]
	if m.From != "jörg@x.test" || m.Mail.Size != 100 || m.Mail.Body != gosmtp.Body8BitMIME || !m.Mail.UTF8 ||
		m.Mail.Return != gosmtp.DSNReturnHeaders || m.Mail.EnvelopeID != "id+1=2" {
		t.Fatalf("mail options %+v", m.Mail)
	}
	if fmt.Sprint(m.Rcpts[0].Notify) != "[FAILURE DELAY]" || m.Rcpts[0].OriginalRecipient != "orig@y.test" || m.Rcpts[1].OriginalRecipient != "" {
		t.Fatalf("rcpt options %+v", m.Rcpts)
	}
	// Too large: refused before anything is sent.
	before := ts.received(0)
	res, err := c.Send(ctxT(t), &Envelope{From: "a@x.test", Recipients: []string{"b@y.test"}, Size: 2 << 20}, strings.NewReader("x"))
	var e *Error
	if !errors.As(err, &e) || e.Code != 552 || !e.Local || res.Recipients[0].Err != err {
		t.Fatalf("oversize: %v", err)
	}
	if err := c.Noop(ctxT(t)); err != nil || ts.received(0) != before+"NOOP\r\n" {
		t.Fatalf("data was sent for an oversized message: %q", ts.received(0))
	}
}

func TestNoExtensionsLeavesParametersOut(t *testing.T) {
	ts := startServer(t, nil, []string{"8BITMIME"}, nil)
	c, err := Dial(ctxT(t), ts.Addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Send(ctxT(t), &Envelope{From: "ü@x.test", Recipients: []string{"b@y.test"}, UTF8: true}, strings.NewReader("x"))
	var e *Error
	if !errors.As(err, &e) || e.Code != 553 || e.EnhancedCode != (EnhancedCode{5, 6, 7}) {
		t.Fatalf("UTF8 without SMTPUTF8: %v", err)
	}
	// 8-bit content for a server without 8BITMIME and no Downgrade hook:
	// refused locally and for good, nothing sent.
	env := &Envelope{From: "a@x.test", Recipients: []string{"b@y.test"}, EightBit: true}
	res, err := c.Send(ctxT(t), env, strings.NewReader("caf\xc3\xa9"))
	if !errors.As(err, &e) || e.Code != 554 || e.EnhancedCode != (EnhancedCode{5, 6, 3}) || !e.Local || !e.Permanent() || res.Recipients[0].Err != err {
		t.Fatalf("8-bit without 8BITMIME: %v", err)
	}
	env = &Envelope{From: "a@x.test", Recipients: []string{"b@y.test"}, DSNReturn: DSNReturnFull, Notify: []string{"NEVER"}}
	if _, err := c.Send(ctxT(t), env, strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	if got := ts.received(0); !strings.Contains(got, "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n") {
		t.Fatalf("unexpected parameters: %q", got)
	}
}

// bodyReader generates a large body without holding it in memory: lines
// with bare LF, leading dots and a long line.
type bodyReader struct{ n, max int }

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.n >= b.max {
		return 0, io.EOF
	}
	i := 0
	for i < len(p) && b.n < b.max {
		switch {
		case b.n%1000 == 0:
			p[i] = '.'
		case b.n%1000 == 999:
			p[i] = '\n'
		default:
			p[i] = byte('a' + b.n%26)
		}
		i++
		b.n++
	}
	return i, nil
}

func TestLargeBodyStreamed(t *testing.T) {
	const size = 3<<20 + 17
	want := sha256.New()
	io.Copy(want, crlf.NewReader(&bodyReader{max: size}))
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			ts := startServer(t, nil, m.hide, nil)
			c, err := Dial(ctxT(t), ts.Addr, &Options{ChunkSize: 64 << 10})
			if err != nil {
				t.Fatal(err)
			}
			res, err := c.Send(ctxT(t), &Envelope{From: "a@x.test", Recipients: []string{"b@y.test"}}, &bodyReader{max: size})
			if err != nil {
				t.Fatal(err)
			}
			got := ts.Be.messages()[0].Data
			if sum := sha256.Sum256(got); !bytes.Equal(sum[:], want.Sum(nil)) || int64(len(got)) != res.BodySize {
				t.Fatalf("body differs: %d bytes received, %d sent", len(got), res.BodySize)
			}
		})
	}
}

func TestSTARTTLS(t *testing.T) {
	cert, roots := selfSigned(t)
	be := &backend{user: "u", pass: "p@ss", mechs: []string{"PLAIN"}}
	ts := startServer(t, be, nil, func(s *gosmtp.Server) {
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		s.AllowInsecureAuth = false
	})
	var tr testTranscript
	c, err := Dial(ctxT(t), ts.Addr, &Options{TLSConfig: &tls.Config{RootCAs: roots}, Username: "u", Password: "p@ss", Transcript: tr.hook})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.TLS(); !ok {
		t.Fatal("not encrypted")
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Fatal("capabilities from before STARTTLS were kept")
	}
	if _, err := c.Send(ctxT(t), &Envelope{From: "a@x.test", Recipients: []string{"b@y.test"}}, strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	if m := ts.Be.messages(); len(m) != 1 || m[0].Authn != "u" {
		t.Fatalf("messages %+v", m)
	}
	raw := ts.received(0)
	if !strings.HasPrefix(raw, "EHLO localhost\r\nSTARTTLS\r\n") || strings.Contains(raw, "AUTH") || strings.Contains(raw, "MAIL") {
		t.Fatalf("clear text after STARTTLS: %q", raw[:min(len(raw), 200)])
	}
	if s := tr.text(); strings.Count(s, "C: EHLO localhost") != 2 || !strings.Contains(s, "C: AUTH PLAIN ***") || strings.Contains(s, "p@ss") {
		t.Fatalf("transcript:\n%s", s)
	}

	// Untrusted certificate: a connection error, nothing sent in clear.
	_, err = Dial(ctxT(t), ts.Addr, &Options{Username: "u", Password: "p@ss"})
	var ce *ConnError
	if !errors.As(err, &ce) || ce.Stage != "TLS handshake" {
		t.Fatalf("unverified certificate: %v", err)
	}
	// Explicitly insecure, for tests.
	if _, err := Dial(ctxT(t), ts.Addr, &Options{TLSConfig: &tls.Config{InsecureSkipVerify: true}}); err != nil {
		t.Fatal(err)
	}
}

func TestTLSPolicies(t *testing.T) {
	ts := startServer(t, &backend{user: "u", pass: "p", mechs: []string{"PLAIN"}}, nil, nil) // no STARTTLS offered
	var e *Error
	_, err := Dial(ctxT(t), ts.Addr, &Options{Username: "u", Password: "p"})
	if !errors.As(err, &e) || e.Code != 454 || !e.Local || !e.Temporary() || !strings.Contains(e.Message, "STARTTLS") {
		t.Fatalf("credentials default to required STARTTLS: %v", err)
	}
	_, err = Dial(ctxT(t), ts.Addr, &Options{Username: "u", Password: "p", StartTLS: TLSOpportunistic})
	if !errors.As(err, &e) || e.Code != 454 || !e.Local || !strings.Contains(e.Message, "without TLS") {
		t.Fatalf("credentials in clear text: %v", err)
	}
	if _, err := Dial(ctxT(t), ts.Addr, &Options{Username: "u", Password: "p", StartTLS: TLSOff, AllowInsecureAuth: true}); err != nil {
		t.Fatalf("explicitly allowed: %v", err)
	}
	if !strings.Contains(ts.received(0), "QUIT") && strings.Contains(ts.received(0)+ts.received(1), "AUTH") {
		t.Fatal("AUTH was sent in clear text")
	}
	if _, err := Dial(ctxT(t), ts.Addr, nil); err != nil {
		t.Fatalf("opportunistic without STARTTLS: %v", err)
	}
}

func TestImplicitTLS(t *testing.T) {
	cert, roots := selfSigned(t)
	be := &backend{}
	srv := gosmtp.NewServer(be)
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	r, err := ParseRelayURL("smtps://" + l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c, err := Dial(ctxT(t), r.Addr(), r.Options(&Options{TLSConfig: &tls.Config{RootCAs: roots}}))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.TLS(); !ok {
		t.Fatal("not TLS")
	}
	if _, err := c.SendAndQuit(ctxT(t), &Envelope{From: "a@x.test", Recipients: []string{"b@y.test"}}, strings.NewReader("hi")); err != nil {
		t.Fatal(err)
	}
	if len(be.messages()) != 1 {
		t.Fatal("not delivered")
	}
}

func TestAuthMechanisms(t *testing.T) {
	cases := []struct {
		offered []string
		opts    Options
		want    string
	}{
		{[]string{"PLAIN", "LOGIN", "CRAM-MD5"}, Options{Username: "user", Password: "sëcret"}, "CRAM-MD5"},
		{[]string{"LOGIN", "PLAIN"}, Options{Username: "user", Password: "sëcret"}, "PLAIN"},
		{[]string{"LOGIN"}, Options{Username: "user", Password: "sëcret"}, "LOGIN"},
		{[]string{"PLAIN", "LOGIN"}, Options{Username: "user", Password: "sëcret", AuthMechanism: "login"}, "LOGIN"},
		{[]string{"PLAIN", "XOAUTH2"}, Options{Username: "user", OAuthToken: "tok123"}, "XOAUTH2"},
	}
	for _, tc := range cases {
		t.Run(tc.want+"/"+strings.Join(tc.offered, ","), func(t *testing.T) {
			be := &backend{user: "user", pass: "sëcret", token: "tok123", mechs: tc.offered}
			ts := startServer(t, be, nil, nil)
			var tr testTranscript
			o := tc.opts
			o.StartTLS, o.AllowInsecureAuth, o.Transcript = TLSOff, true, tr.hook
			c, err := Dial(ctxT(t), ts.Addr, &o)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Send(ctxT(t), &Envelope{From: "a@x.test", Recipients: []string{"b@y.test"}}, strings.NewReader("x")); err != nil {
				t.Fatal(err)
			}
			s := tr.text()
			if !strings.Contains(s, "C: AUTH "+tc.want) {
				t.Fatalf("want %s:\n%s", tc.want, s)
			}
			assertRedacted(t, s, ts.received(0))
		})
	}
}

// assertRedacted checks that no secret is in the transcript and that no
// AUTH payload line the client put on the wire appears in it.
func assertRedacted(t *testing.T, transcript, wire string) {
	t.Helper()
	for _, secret := range []string{"sëcret", "tok123"} {
		if strings.Contains(transcript, secret) {
			t.Fatalf("secret %q in transcript:\n%s", secret, transcript)
		}
	}
	in := false
	for _, l := range strings.Split(wire, "\r\n") {
		switch {
		case strings.HasPrefix(l, "AUTH "):
			in = true
			if f := strings.Fields(l); len(f) == 3 && strings.Contains(transcript, f[2]) {
				t.Fatalf("initial response %q in transcript", f[2])
			}
		case strings.HasPrefix(l, "MAIL"):
			in = false
		case in && l != "":
			if strings.Contains(transcript, "C: "+l) {
				t.Fatalf("AUTH continuation %q in transcript:\n%s", l, transcript)
			}
		}
	}
	if !strings.Contains(transcript, "C: ***") && !strings.Contains(transcript, " ***") {
		t.Fatalf("no redaction marker in transcript:\n%s", transcript)
	}
}

func TestAuthFailure(t *testing.T) {
	be := &backend{user: "user", pass: "right", mechs: []string{"PLAIN"}}
	ts := startServer(t, be, nil, nil)
	_, err := Dial(ctxT(t), ts.Addr, &Options{Username: "user", Password: "wrong", StartTLS: TLSOff, AllowInsecureAuth: true})
	var e *Error
	if !errors.As(err, &e) || e.Code/100 != 5 || e.Command != "AUTH PLAIN" || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("err = %v", err)
	}
	be2 := &backend{user: "user", token: "good", mechs: []string{"XOAUTH2"}}
	ts2 := startServer(t, be2, nil, nil)
	_, err = Dial(ctxT(t), ts2.Addr, &Options{Username: "user", OAuthToken: "bad", StartTLS: TLSOff, AllowInsecureAuth: true})
	if !errors.As(err, &e) || e.Code/100 != 5 || e.Command != "AUTH XOAUTH2" {
		t.Fatalf("xoauth2 err = %v", err)
	}
	_, err = Dial(ctxT(t), ts2.Addr, &Options{Username: "user", Password: "x", StartTLS: TLSOff, AllowInsecureAuth: true})
	if !errors.As(err, &e) || !e.Local || !strings.Contains(e.Message, "no supported AUTH mechanism") {
		t.Fatalf("no common mechanism: %v", err)
	}
}
