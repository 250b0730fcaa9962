package main

import (
	"strings"
	"testing"

	gosmtp "github.com/emersion/go-smtp"
)

// TestSendDirectExitStatus: 0 when every recipient was delivered, 75
// (EX_TEMPFAIL) when something was deferred, 1 when something failed
// for good; local decisions are worded as local, never as a reply.
func TestSendDirectExitStatus(t *testing.T) {
	s := &directSink{user: "me", pass: "right", reject: map[string]*gosmtp.SMTPError{
		"later@y.test": {Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 2, 0}, Message: "mailbox busy"},
		"gone@y.test":  {Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no such user"},
	}}
	addr := startDirectSink(t, s)
	plain := "smtp://" + addr
	dead := "smtp://127.0.0.1:1"
	cases := []struct {
		name   string
		relay  string
		to     []string
		status int
		stderr []string // substrings
	}{
		{"delivered", plain, []string{"ok@y.test", "ok2@y.test"}, 0, nil},
		{"deferred", plain, []string{"ok@y.test", "later@y.test"}, 75, []string{"451 4.2.0 mailbox busy", "temporary, try again later"}},
		{"failed beats deferred", plain, []string{"later@y.test", "gone@y.test"}, 1, []string{"550 5.1.1 no such user", "451 4.2.0"}},
		{"connection failure", dead, []string{"ok@y.test"}, 75, []string{"connection failed during dial"}},
		{"STARTTLS required, not offered", "smtp://me:right@" + addr, []string{"ok@y.test"}, 75,
			[]string{"policy requires STARTTLS; the server does not offer it (decided locally, 454 4.7.0)"}},
		{"AUTH refused", "smtp://me:wrong@" + addr + "?starttls=off&insecure_auth=true", []string{"ok@y.test"}, 1, []string{"535 5.7.8 bad credentials"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"send", "--direct", "--relay", tc.relay, "--from", "a@x.test", "--subject", "s", "--text", "body"}
			for _, r := range tc.to {
				args = append(args, "--to", r)
			}
			code, out, errOut := runOutbox(t, args...)
			if code != tc.status {
				t.Fatalf("exit %d, want %d; stderr %q", code, tc.status, errOut)
			}
			if tc.status == 0 && (!strings.HasPrefix(out, "delivered: 250") || errOut != "") {
				t.Fatalf("stdout %q, stderr %q", out, errOut)
			}
			for _, want := range tc.stderr {
				if !strings.Contains(errOut, want) {
					t.Fatalf("stderr %q lacks %q", errOut, want)
				}
			}
			if strings.Contains(errOut, "right") || strings.Contains(errOut, "wrong") || strings.Contains(errOut, "STARTTLS rejected") {
				t.Fatalf("stderr %q shows a password or words a local decision as a reply", errOut)
			}
			if tc.status != 0 && strings.Count(errOut, "\n") != 1 {
				t.Fatalf("stderr is not one line: %q", errOut)
			}
		})
	}
}

// TestSendDirectSendsSize: the composed message's exact size goes in
// SIZE=, and the -v transcript shows the parameter but no secret.
func TestSendDirectSendsSize(t *testing.T) {
	s := &directSink{user: "me", pass: "pässword"}
	addr := startDirectSink(t, s)
	code, _, errOut := runOutbox(t, "send", "--direct", "-v", "--relay", "smtp://me:p%C3%A4ssword@"+addr+"?starttls=off&insecure_auth=true",
		"--from", "a@x.test", "--to", "b@y.test", "--subject", "size", "--text", strings.Repeat("some text\n", 500))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	msgs := s.messages()
	if len(msgs) != 1 || len(s.sizes) != 1 {
		t.Fatalf("%d messages, sizes %v", len(msgs), s.sizes)
	}
	data := msgs[0][strings.Index(msgs[0], "|")+1:]
	if s.sizes[0] != int64(len(data)) || s.sizes[0] < 5000 {
		t.Fatalf("SIZE=%d for a message of %d bytes", s.sizes[0], len(data))
	}
	if !strings.Contains(errOut, "C: MAIL FROM:<a@x.test> SIZE=") || !strings.Contains(errOut, "C: AUTH PLAIN ***") || strings.Contains(errOut, "pässword") {
		t.Fatalf("transcript:\n%s", errOut)
	}
}
