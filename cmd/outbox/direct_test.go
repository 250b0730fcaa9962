package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

// directSink is a go-smtp backend that keeps messages and rejects some recipients.
type directSink struct {
	mu     sync.Mutex
	msgs   []string
	sizes  []int64 // SIZE= of each MAIL
	reject map[string]*gosmtp.SMTPError
	user   string
	pass   string
}

func (s *directSink) NewSession(*gosmtp.Conn) (gosmtp.Session, error) {
	return &directSinkSession{s: s}, nil
}

type directSinkSession struct {
	s    *directSink
	to   []string
	auth bool
}

func (x *directSinkSession) Reset()        { x.to = nil }
func (x *directSinkSession) Logout() error { return nil }
func (x *directSinkSession) Mail(_ string, o *gosmtp.MailOptions) error {
	x.s.mu.Lock()
	defer x.s.mu.Unlock()
	x.s.sizes = append(x.s.sizes, o.Size)
	return nil
}
func (x *directSinkSession) AuthMechanisms() []string {
	if x.s.user == "" {
		return nil
	}
	return []string{"PLAIN"}
}
func (x *directSinkSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, u, p string) error {
		if u != x.s.user || p != x.s.pass {
			return &gosmtp.SMTPError{Code: 535, EnhancedCode: gosmtp.EnhancedCode{5, 7, 8}, Message: "bad credentials"}
		}
		x.auth = true
		return nil
	}), nil
}
func (x *directSinkSession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	if e := x.s.reject[to]; e != nil {
		return e
	}
	x.to = append(x.to, to)
	return nil
}
func (x *directSinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	x.s.mu.Lock()
	x.s.msgs = append(x.s.msgs, strings.Join(x.to, ",")+"|"+string(b))
	x.s.mu.Unlock()
	return nil
}

func (s *directSink) messages() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.msgs...)
}

func startDirectSink(t *testing.T, s *directSink) string {
	t.Helper()
	srv := gosmtp.NewServer(s)
	srv.Domain = "directSink.test"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.ErrorLog = log.New(io.Discard, "", 0)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

func directCompose(text string) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := io.WriteString(w, "From: a@x.test\nTo: b@y.test\nSubject: hi\n\n"+text+"\n")
		return err
	}
}

func runDirect(t *testing.T, o directOptions) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	err := sendDirect(ctx, o, &out, &errb)
	return out.String(), errb.String(), err
}

func TestSendDirectDelivers(t *testing.T) {
	s := &directSink{user: "me", pass: "s3cret!"}
	addr := startDirectSink(t, s)
	out, stderr, err := runDirect(t, directOptions{
		Relay: "smtp://me:s3cret%21@" + addr + "?starttls=off&insecure_auth=true", Verbose: true,
		From: "a@x.test", Recipients: []string{"b@y.test", "c@y.test"}, Compose: directCompose(".leading dot"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "delivered: 250 2.0.0 ") {
		t.Fatalf("stdout %q", out)
	}
	m := s.messages()
	if len(m) != 1 || m[0] != "b@y.test,c@y.test|From: a@x.test\r\nTo: b@y.test\r\nSubject: hi\r\n\r\n.leading dot\r\n" {
		t.Fatalf("messages %q", m)
	}
	for _, want := range []string{"C: AUTH PLAIN ***", "C: MAIL FROM:<a@x.test>", "C: RCPT TO:<c@y.test>", "S: 250", "C: QUIT"} {
		if !strings.Contains(stderr, want) {
			t.Fatalf("transcript lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "s3cret") || strings.Contains(stderr, "leading dot") {
		t.Fatalf("transcript leaks a secret or the body:\n%s", stderr)
	}
}

func TestSendDirectRejections(t *testing.T) {
	s := &directSink{reject: map[string]*gosmtp.SMTPError{
		"bad@y.test": {Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "user unknown"},
	}}
	addr := startDirectSink(t, s)
	relay := "smtp://" + addr
	out, _, err := runDirect(t, directOptions{Relay: relay, From: "a@x.test", Recipients: []string{"bad@y.test"}, Compose: directCompose("x")})
	if err == nil || out != "" || !strings.Contains(err.Error(), "RCPT TO:<bad@y.test> rejected: 550 5.1.1 user unknown") {
		t.Fatalf("all rejected: %v (stdout %q)", err, out)
	}
	out, _, err = runDirect(t, directOptions{Relay: relay, From: "a@x.test", Recipients: []string{"ok@y.test", "bad@y.test"}, Compose: directCompose("x")})
	if err == nil || !strings.Contains(err.Error(), "550 5.1.1 user unknown") || !strings.HasPrefix(out, "delivered: 250") {
		t.Fatalf("partial: %v (stdout %q)", err, out)
	}
	if m := s.messages(); len(m) != 1 || !strings.HasPrefix(m[0], "ok@y.test|") {
		t.Fatalf("messages %q", m)
	}
}

func TestSendDirectFailures(t *testing.T) {
	s := &directSink{user: "me", pass: "right"}
	addr := startDirectSink(t, s)
	cases := []struct {
		name string
		o    directOptions
		want string
	}{
		{"no relay", directOptions{From: "a@x.test", Recipients: []string{"b@y.test"}}, "--relay"},
		{"bad url", directOptions{Relay: "smtp://" + addr + "?starttls=sometimes", From: "a@x.test", Recipients: []string{"b@y.test"}}, "starttls"},
		{"no recipients", directOptions{Relay: "smtp://" + addr, From: "a@x.test"}, "recipient"},
		{"clear-text credentials", directOptions{Relay: "smtp://me:right@" + addr + "?starttls=off", From: "a@x.test", Recipients: []string{"b@y.test"}}, "refusing to send credentials without TLS"},
		{"starttls required", directOptions{Relay: "smtp://me:right@" + addr, From: "a@x.test", Recipients: []string{"b@y.test"}}, "STARTTLS: policy requires STARTTLS; the server does not offer it (decided locally, 454 4.7.0)"},
		{"wrong password", directOptions{Relay: "smtp://me:wrong@" + addr + "?starttls=off&insecure_auth=1", From: "a@x.test", Recipients: []string{"b@y.test"}}, "535 5.7.8 bad credentials"},
		{"compose fails", directOptions{Relay: "smtp://me:right@" + addr + "?starttls=off&insecure_auth=1", From: "a@x.test", Recipients: []string{"b@y.test"},
			Compose: func(w io.Writer) error {
				io.WriteString(w, "Subject: x\n\npartial")
				return errors.New("attachment unreadable")
			}}, "composing message: attachment unreadable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.o.Compose == nil {
				tc.o.Compose = directCompose("x")
			}
			out, _, err := runDirect(t, tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) || out != "" {
				t.Fatalf("err = %v, want %q (stdout %q)", err, tc.want, out)
			}
			if strings.Contains(err.Error(), "right") || strings.Contains(err.Error(), "wrong") && tc.name != "wrong password" {
				t.Fatalf("password in error: %v", err)
			}
		})
	}
	if len(s.messages()) != 0 {
		t.Fatal("a failed send delivered a message")
	}
	// Nothing listening.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := l.Addr().String()
	l.Close()
	_, _, err := runDirect(t, directOptions{Relay: "smtp://" + dead, From: "a@x.test", Recipients: []string{"b@y.test"}, Compose: directCompose("x")})
	if err == nil || !strings.Contains(err.Error(), "connection failed during dial") {
		t.Fatalf("dead relay: %v", err)
	}
}
