package smtp

import (
	"errors"
	"strings"
	"testing"
)

// wantLocal asserts err is a local *Error 501 with the given enhanced code.
func wantLocal(t *testing.T, what string, err error, enh EnhancedCode) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || !e.Local || e.Code != 501 || e.EnhancedCode != enh {
		t.Fatalf("%s: error %v, want a local 501 %s", what, err, enh)
	}
}

func TestHostileRecipientRefusedLocally(t *testing.T) {
	hostile := []string{
		"x> NOTIFY=NEVER@y.test",
		"a@y.test>\r\nRCPT TO:<evil@y.test",
		"john doe@y.test",
		"nul\x00@y.test",
		"<b@y.test",
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			ts := startServer(t, nil, m.hide, nil)
			c, err := Dial(ctxT(t), ts.Addr, nil)
			if err != nil {
				t.Fatal(err)
			}
			env := &Envelope{From: "a@x.test", Recipients: append([]string{"ok@y.test"}, hostile...)}
			res, err := c.SendAndQuit(ctxT(t), env, strings.NewReader(testBody))
			if err != nil {
				t.Fatal(err)
			}
			if res.Recipients[0].Err != nil {
				t.Fatalf("ok@y.test: %v", res.Recipients[0].Err)
			}
			for i, a := range hostile {
				rr := res.Recipients[i+1]
				if rr.Address != a || rr.Reply != nil {
					t.Errorf("%q: result %+v", a, rr)
				}
				wantLocal(t, a, rr.Err, EnhancedCode{5, 1, 3})
			}
			got := ts.received(0)
			if n := strings.Count(got, "RCPT TO:"); n != 1 || strings.Contains(got, "NOTIFY") || strings.Contains(got, "evil") {
				t.Fatalf("server received %d RCPT:\n%q", n, got)
			}
			if msgs := ts.Be.messages(); len(msgs) != 1 || strings.Join(msgs[0].To, ",") != "ok@y.test" {
				t.Fatalf("messages %+v", msgs)
			}
		})
	}
}

func TestHostileAddressesSendNothing(t *testing.T) {
	ts := startServer(t, nil, nil, nil)
	c, err := Dial(ctxT(t), ts.Addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Every recipient refused: no transaction at all.
	env := &Envelope{From: "a@x.test", Recipients: []string{"x> NOTIFY=NEVER@y.test", "b@y.test\r\nQUIT"}}
	res, err := c.Send(ctxT(t), env, strings.NewReader(testBody))
	if !errors.Is(err, ErrNoRecipients) {
		t.Fatalf("error %v, want ErrNoRecipients", err)
	}
	for _, rr := range res.Recipients {
		wantLocal(t, rr.Address, rr.Err, EnhancedCode{5, 1, 3})
	}
	// A hostile sender: refused before MAIL is written.
	env = &Envelope{From: "a@x.test> RET=HDRS", Recipients: []string{"b@y.test"}}
	res, err = c.Send(ctxT(t), env, strings.NewReader(testBody))
	wantLocal(t, "sender", err, EnhancedCode{5, 1, 7})
	wantLocal(t, "recipient of a refused sender", res.Recipients[0].Err, EnhancedCode{5, 1, 7})
	// The client is still usable, and nothing but EHLO reached the server.
	env = &Envelope{From: "", Recipients: []string{"b@y.test"}}
	if _, err := c.SendAndQuit(ctxT(t), env, strings.NewReader(testBody)); err != nil {
		t.Fatal(err)
	}
	if got := ts.received(0); !strings.HasPrefix(got, "EHLO localhost\r\nMAIL FROM:<>") || strings.Count(got, "MAIL FROM") != 1 {
		t.Fatalf("server received:\n%q", got)
	}
}

func TestCheckPath(t *testing.T) {
	for _, a := range []string{"", "a@b.test", `"john doe"@b.test`, `"a\"b c"@b.test`, "δοκιμή@b.test", "a@[192.0.2.1]"} {
		if err := checkPath(a); err != nil {
			t.Errorf("checkPath(%q) = %v", a, err)
		}
	}
	for _, a := range []string{"a b@c", "a@b c", `"a b"@c d`, `"a b@c`, "a\t@b", "a\r@b", "a\n@b", "a\x00@b", "a>@b", "<a@b", `"a>b"@c`, `"a\"@b`} {
		if err := checkPath(a); err == nil {
			t.Errorf("checkPath(%q) accepted it", a)
		}
	}
}

func TestNotifyParamKeepsOnlyKeywords(t *testing.T) {
	for in, want := range map[string]string{
		"FAILURE,DELAY":                "FAILURE,DELAY",
		"never":                        "NEVER",
		"SUCCESS ORCPT=rfc822;x,DELAY": "DELAY",
		"FAILURE\r\nRSET":              "",
	} {
		if got := notifyParam(strings.Split(in, ",")); got != want {
			t.Errorf("notifyParam(%q) = %q, want %q", in, got, want)
		}
	}
}
