package smtp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/outbox-mail/outbox/internal/crlf"
)

func TestReadReply(t *testing.T) {
	cases := []struct {
		in   string
		want string // Reply.String(), or the error
		enh  EnhancedCode
	}{
		{"250 2.1.0 Ok\r\n", "250 2.1.0 Ok", EnhancedCode{2, 1, 0}},
		{"250-mx.test\r\n250-PIPELINING\r\n250 CHUNKING\r\n", "250 mx.test PIPELINING CHUNKING", EnhancedCode{}},
		{"550 5.1.1 <x@y>: user unknown\n", "550 5.1.1 <x@y>: user unknown", EnhancedCode{5, 1, 1}},
		{"250\r\n", "250", EnhancedCode{}},
		{"451 5.1.1 class mismatch\r\n", "451 5.1.1 class mismatch", EnhancedCode{}},
		{"354 End data with <CR><LF>.<CR><LF>\r\n", "354 End data with <CR><LF>.<CR><LF>", EnhancedCode{}},
		{"25\r\n", "malformed reply", EnhancedCode{}},
		{"250x\r\n", "malformed reply", EnhancedCode{}},
		{"150 old\r\n", "malformed reply", EnhancedCode{}},
		{"250-a\r\n", "EOF", EnhancedCode{}},
	}
	for _, tc := range cases {
		r, err := readReply(bufio.NewReader(strings.NewReader(tc.in)), 2048, 100, nil)
		got := ""
		if err != nil {
			got = err.Error()
		} else {
			got = r.String()
		}
		if !strings.HasPrefix(got, tc.want) || (err == nil && r.EnhancedCode != tc.enh) {
			t.Errorf("%q: got %q (%v), want %q", tc.in, got, r, tc.want)
		}
	}
	// One byte at a time, through a small buffer, still works and is bounded.
	r, err := readReply(bufio.NewReaderSize(iotest.OneByteReader(strings.NewReader("250-"+strings.Repeat("a", 100)+"\r\n250 b\r\n")), 16), 200, 5, nil)
	if err != nil || len(r.Lines) != 2 {
		t.Fatalf("%v %v", r, err)
	}
	_, err = readReply(bufio.NewReaderSize(strings.NewReader(strings.Repeat("a", 300)+"\r\n"), 16), 200, 5, nil)
	if !errors.Is(err, ErrReplyTooLong) {
		t.Fatalf("err = %v", err)
	}
}

func FuzzReadReply(f *testing.F) {
	for _, s := range []string{"250 ok\r\n", "250-a\r\n250 b\r\n", "550 5.1.1 x\r\n", "2", "250-" + strings.Repeat("x", 3000), "334 VXNlcm5hbWU6\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := readReply(bufio.NewReader(bytes.NewReader(data)), 512, 10, nil)
		if err != nil {
			return
		}
		if r.Code < 200 || r.Code > 599 || len(r.Lines) == 0 || len(r.Lines) > 10 {
			t.Fatalf("bad reply %+v", r)
		}
		for _, l := range r.Lines {
			if len(l) > 512 {
				t.Fatalf("line of %d bytes", len(l))
			}
		}
		if r.EnhancedCode != (EnhancedCode{}) && r.EnhancedCode[0] != r.Code/100 {
			t.Fatalf("enhanced code %v with %d", r.EnhancedCode, r.Code)
		}
	})
}

func TestCRLFAndDotStuffing(t *testing.T) {
	cases := []struct{ in, crlf, data string }{
		{"", "", ".\r\n"},
		{"a", "a\r\n", "a\r\n.\r\n"},
		{"a\nb\n", "a\r\nb\r\n", "a\r\nb\r\n.\r\n"},
		{"a\r\nb", "a\r\nb\r\n", "a\r\nb\r\n.\r\n"},
		{"a\rb\r", "a\r\nb\r\n", "a\r\nb\r\n.\r\n"},
		{".a\n..b\n.\n", ".a\r\n..b\r\n.\r\n", "..a\r\n...b\r\n..\r\n.\r\n"},
		{"x.\n.", "x.\r\n.\r\n", "x.\r\n..\r\n.\r\n"},
		{"\r\n\r\n", "\r\n\r\n", "\r\n\r\n.\r\n"},
	}
	for _, tc := range cases {
		for _, oneByte := range []bool{false, true} {
			var src io.Reader = strings.NewReader(tc.in)
			if oneByte {
				src = iotest.OneByteReader(src)
			}
			got, err := io.ReadAll(crlf.NewReader(src))
			if err != nil || string(got) != tc.crlf {
				t.Errorf("crlf(%q) = %q, want %q", tc.in, got, tc.crlf)
			}
			var buf bytes.Buffer
			bw := bufio.NewWriter(&buf)
			dw := &dotWriter{w: bw, lineStart: true}
			var r io.Reader = crlf.NewReader(strings.NewReader(tc.in))
			if oneByte {
				r = iotest.OneByteReader(r)
			}
			io.Copy(dw, r)
			dw.close()
			bw.Flush()
			if buf.String() != tc.data {
				t.Errorf("data(%q) = %q, want %q", tc.in, buf.String(), tc.data)
			}
		}
	}
}

func TestParseRelayURL(t *testing.T) {
	cases := []struct {
		in, addr, user, pass, str, err string
		implicit                       bool
		policy                         TLSPolicy
	}{
		{in: "smtp://mail.test", addr: "mail.test:587", str: "smtp://mail.test:587"},
		{in: "smtps://u:p@mail.test", addr: "mail.test:465", user: "u", pass: "p", implicit: true, str: "smtps://u:***@mail.test:465"},
		{in: "smtp://us%40er:p%3Ass%2Fw@mail.test:2525?starttls=off", addr: "mail.test:2525", user: "us@er", pass: "p:ss/w", policy: TLSOff, str: "smtp://us%40er:***@mail.test:2525?starttls=off"},
		{in: "smtp://u@[::1]:25?starttls=opportunistic", addr: "[::1]:25", user: "u", policy: TLSOpportunistic, str: "smtp://u@[::1]:25?starttls=opportunistic"},
		{in: "smtp://h?starttls=required", addr: "h:587", policy: TLSRequired, str: "smtp://h:587?starttls=required"},
		{in: "http://h", err: `unknown scheme "http"`},
		{in: "mail.test:25", err: "unknown scheme"},
		{in: "smtp://", err: "missing host"},
		{in: "smtp://h:99999", err: "invalid port"},
		{in: "smtp://h?starttls=maybe", err: `starttls="maybe"`},
		{in: "smtp://h?tls=1", err: `unknown parameter "tls"`},
		{in: "smtp://h?insecure_auth=maybe", err: "insecure_auth"},
		{in: "smtps://h?starttls=off", err: "does not apply"},
		{in: "smtp://u:secret@h/path", err: "unexpected path"},
		{in: "smtp://u:sec%zzret@h", err: "invalid URL escape"},
	}
	for _, tc := range cases {
		r, err := ParseRelayURL(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "secret") {
				t.Errorf("%q: err %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if r.Addr() != tc.addr || r.Username != tc.user || r.Password != tc.pass || r.ImplicitTLS != tc.implicit || r.StartTLS != tc.policy || r.String() != tc.str {
			t.Errorf("%q: got %+v %q", tc.in, r, r.String())
		}
	}
	r, _ := ParseRelayURL("smtp://u:p@h?starttls=off&insecure_auth=true")
	if !r.AllowInsecureAuth || !r.Options(nil).AllowInsecureAuth || r.String() != "smtp://u:***@h:587?insecure_auth=true&starttls=off" {
		t.Fatalf("insecure_auth: %+v %s", r, r)
	}
	r, _ = ParseRelayURL("smtp://u:p@h")
	if o := r.Options(&Options{LocalName: "me"}); o.Username != "u" || o.Password != "p" || o.LocalName != "me" || o.withDefaults().StartTLS != TLSRequired {
		t.Fatalf("options %+v", o)
	}
}

func TestErrorText(t *testing.T) {
	e := &Error{Command: "RCPT TO:<x@y>", Code: 550, EnhancedCode: EnhancedCode{5, 1, 1}, Message: "user unknown"}
	if e.Error() != "smtp: RCPT TO:<x@y> rejected: 550 5.1.1 user unknown" || e.Temporary() || !e.Permanent() {
		t.Fatal(e.Error())
	}
	ce := &ConnError{Stage: "DATA", Err: io.ErrUnexpectedEOF}
	if !errors.Is(ce, ErrConnection) || !errors.Is(ce, io.ErrUnexpectedEOF) || ce.Timeout() || ce.Error() != "smtp: connection failed during DATA: unexpected EOF" {
		t.Fatal(ce.Error())
	}
}
