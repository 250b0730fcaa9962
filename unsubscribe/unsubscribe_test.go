package unsubscribe

import (
	"bufio"
	"bytes"
	"errors"
	"net/mail"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/message"
)

var (
	secret1 = bytes.Repeat([]byte("u"), 32)
	secret2 = bytes.Repeat([]byte("v"), 32)
)

func newTokens(t testing.TB, secrets ...[]byte) *Tokens {
	t.Helper()
	if len(secrets) == 0 {
		secrets = [][]byte{secret1}
	}
	tk, err := New(secrets...)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func TestTokenRoundTrip(t *testing.T) {
	tk := newTokens(t)
	issued := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, s := range []Subscription{
		{Domain: "Example.COM", Address: "Bob@Example.net"},
		{Domain: "bücher.example", Address: "jürgen@bücher.example", Issued: issued},
		{Domain: "example.com", Address: strings.Repeat("a", 300) + "@example.com", Issued: issued},
	} {
		tok, err := tk.Token(s)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Trim(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			t.Errorf("token %q is not URL-safe", tok)
		}
		got, err := tk.Parse(tok)
		if err != nil {
			t.Fatal(err)
		}
		wantDomain, _ := normalizeDomain(s.Domain)
		if got.Domain != wantDomain || got.Address != s.Address || !got.Issued.Equal(s.Issued) {
			t.Errorf("Parse(Token(%+v)) = %+v", s, got)
		}
	}
	if got, _ := tk.Parse(mustToken(t, tk, Subscription{Domain: "bücher.example", Address: "a@b"})); got.Domain != "xn--bcher-kva.example" {
		t.Errorf("domain %q, want the A-label", got.Domain)
	}
}

func mustToken(t *testing.T, tk *Tokens, s Subscription) string {
	t.Helper()
	tok, err := tk.Token(s)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestTokenRefusals(t *testing.T) {
	tk := newTokens(t)
	tok := mustToken(t, tk, Subscription{Domain: "example.com", Address: "bob@example.net", Issued: time.Unix(1700000000, 0)})
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	// Every character counts, the last one too: its bits that base64
	// leaves unused must be zero.
	for i := range len(tok) {
		for _, c := range alphabet {
			if byte(c) == tok[i] {
				continue
			}
			if _, err := tk.Parse(tok[:i] + string(c) + tok[i+1:]); !errors.Is(err, ErrBadToken) {
				t.Fatalf("token changed at %d to %q: %v", i, c, err)
			}
		}
	}
	for name, bad := range map[string]string{
		"empty": "", "short": tok[:10], "cut": tok[:len(tok)-2], "longer": tok + "AA",
		"padding": tok + "=", "not base64": "!!!!" + tok, "huge": strings.Repeat("A", 4000),
		"a line break inside": tok[:10] + "\n" + tok[10:], "CRLF after": tok + "\r\n",
	} {
		if _, err := tk.Parse(bad); !errors.Is(err, ErrBadToken) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := newTokens(t, secret2).Parse(tok); !errors.Is(err, ErrBadToken) {
		t.Errorf("another secret: %v", err)
	}
	if _, err := newTokens(t, secret2, secret1).Parse(tok); err != nil {
		t.Errorf("after a rotation: %v", err)
	}
	for _, s := range []Subscription{
		{Domain: "", Address: "a@b"}, {Domain: "exa mple.com", Address: "a@b"},
		{Domain: "example.com", Address: ""}, {Domain: "example.com", Address: "no-at"},
		{Domain: "example.com", Address: "a@b\r\nBcc: x@y"}, {Domain: "example.com", Address: "a b@c"},
		{Domain: "example.com", Address: "a@" + strings.Repeat("b", 400)},
		{Domain: "example.com", Address: "a@b", Issued: time.Unix(-5, 0)},
	} {
		if _, err := tk.Token(s); err == nil {
			t.Errorf("Token(%+v) accepted", s)
		}
	}
	if _, err := New([]byte("short")); err == nil {
		t.Error("a short secret accepted")
	}
}

// The fields parse back as exactly two fields with the expected values,
// whatever the input tries to smuggle in.
func TestFields(t *testing.T) {
	for _, tc := range []struct {
		link, mailto string
		want         string // the List-Unsubscribe value, unfolded
	}{
		{"https://mail.example.com/u/abc", "", "<https://mail.example.com/u/abc>"},
		{"https://mail.example.com/u/abc", "unsub+abc@example.com", "<https://mail.example.com/u/abc>, <mailto:unsub+abc@example.com>"},
		{"https://example.com/u/" + strings.Repeat("x", 100), "u@example.com", "<https://example.com/u/" + strings.Repeat("x", 100) + ">, <mailto:u@example.com>"},
		{"https://example.com/u/a>b, <https://evil.example/", "", "<https://example.com/u/a%3Eb,%20%3Chttps://evil.example/>"},
		{"https://example.com/u/ä?x=\"1\"", "", "<https://example.com/u/%C3%A4?x=%221%22>"},
		{"http://127.0.0.1:8025/u/tok", "a>b@example.com", "<http://127.0.0.1:8025/u/tok>, <mailto:a%3Eb@example.com>"},
	} {
		f, err := Fields(tc.link, tc.mailto)
		if err != nil {
			t.Errorf("Fields(%q, %q): %v", tc.link, tc.mailto, err)
			continue
		}
		h, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(append(f, "\r\n"...)))).ReadMIMEHeader()
		if err != nil {
			t.Fatal(err)
		}
		if len(h) != 2 || len(h["List-Unsubscribe"]) != 1 || h.Get("List-Unsubscribe-Post") != "List-Unsubscribe=One-Click" {
			t.Errorf("Fields(%q, %q) = %q", tc.link, tc.mailto, f)
		}
		if got := h.Get("List-Unsubscribe"); got != tc.want {
			t.Errorf("List-Unsubscribe %q, want %q", got, tc.want)
		}
		for _, l := range strings.Split(strings.TrimSuffix(string(f), "\r\n"), "\r\n") {
			if len(l) > 78 && !strings.HasPrefix(l, "List-Unsubscribe: <") {
				t.Errorf("line of %d octets: %q", len(l), l)
			}
		}
		if bytes.Count(f, []byte("\n")) != bytes.Count(f, []byte("\r\n")) {
			t.Errorf("a bare LF in %q", f)
		}
	}
	for _, bad := range [][2]string{
		{"ftp://example.com/u", ""}, {"/u/relative", ""}, {"https://user:pw@example.com/u", ""},
		{"https://example.com/u", "not an address"}, {"https://example.com/u", "a@b\r\nBcc: x@y"},
		{"https://example.com/" + strings.Repeat("x", 1000), ""}, {"https://exa\nmple.com/", ""},
	} {
		if f, err := Fields(bad[0], bad[1]); err == nil {
			t.Errorf("Fields(%q, %q) = %q, want an error", bad[0], bad[1], f)
		}
	}
}

// Values feed the message package, which folds and writes them; a reader
// gets them back whole.
func TestValuesInComposedMessage(t *testing.T) {
	tk := newTokens(t)
	tok := mustToken(t, tk, Subscription{Domain: "example.com", Address: "bob@example.net"})
	unsub, post, err := Values("https://mail.example.com/u/"+tok, "unsubscribe@example.com")
	if err != nil {
		t.Fatal(err)
	}
	m := &message.Message{
		From: message.Address{Email: "news@example.com"}, To: []message.Address{{Email: "bob@example.net"}},
		Subject: "News", Text: "hello",
		Headers: [][2]string{{"List-Unsubscribe", unsub}, {"List-Unsubscribe-Post", post}},
	}
	var buf bytes.Buffer
	if _, err := m.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	msg, err := mail.ReadMessage(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := msg.Header.Get("List-Unsubscribe"); got != unsub {
		t.Errorf("List-Unsubscribe read back as %q, want %q", got, unsub)
	}
	if got := msg.Header.Get("List-Unsubscribe-Post"); got != PostValue {
		t.Errorf("List-Unsubscribe-Post %q", got)
	}
	link := strings.TrimSuffix(strings.TrimPrefix(strings.Split(unsub, ", ")[0], "<https://mail.example.com/u/"), ">")
	if s, err := tk.Parse(link); err != nil || s.Address != "bob@example.net" {
		t.Errorf("the link's token: %+v %v", s, err)
	}
}

// TestTokenSpelledOneWay is FuzzParse's find: a token whose last
// character differed from the one Token wrote only in the bits base64
// leaves unused ("…QiyVmP0" for "…QiyVmPw") parsed to the same
// subscription.
func TestTokenSpelledOneWay(t *testing.T) {
	tk := newTokens(t)
	tok := mustToken(t, tk, Subscription{Domain: "example.com", Address: "bob@example.net", Issued: time.Unix(1700000000, 0)})
	const canonical = "AYDiz6oGC2V4YW1wbGUuY29tYm9iQGV4YW1wbGUubmV0_sAsuu_p9zuuERrQiyVmPw"
	if tok != canonical {
		t.Fatalf("Token = %q, want %q", tok, canonical)
	}
	if _, err := tk.Parse(canonical); err != nil {
		t.Fatal(err)
	}
	if s, err := tk.Parse(canonical[:len(canonical)-1] + "0"); !errors.Is(err, ErrBadToken) {
		t.Errorf("the other spelling: %+v, %v", s, err)
	}
}

// FuzzParse feeds arbitrary tokens to Parse: no panic, and what it
// accepts is a token Token makes.
func FuzzParse(f *testing.F) {
	tk := newTokens(f)
	tok, _ := tk.Token(Subscription{Domain: "example.com", Address: "bob@example.net", Issued: time.Unix(1700000000, 0)})
	for _, s := range []string{tok, "", "AAAA", tok[:20], tok + "A"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sub, err := tk.Parse(s)
		if err != nil {
			if !errors.Is(err, ErrBadToken) {
				t.Fatalf("Parse(%q): %v", s, err)
			}
			return
		}
		again, err := tk.Token(sub)
		if err != nil || again != s {
			t.Fatalf("Parse(%q) = %+v, whose token is %q (%v)", s, sub, again, err)
		}
	})
}

// FuzzFields: whatever the URL and address, the output is exactly the two
// fields, or an error.
func FuzzFields(f *testing.F) {
	f.Add("https://example.com/u/abc", "u@example.com")
	f.Add("https://example.com/u/a>\r\nBcc: x", "a\r\n@b")
	f.Fuzz(func(t *testing.T, link, mailto string) {
		out, err := Fields(link, mailto)
		if err != nil {
			return
		}
		h, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(append(out, "\r\n"...)))).ReadMIMEHeader()
		if err != nil || len(h) != 2 || len(h["List-Unsubscribe"]) != 1 || len(h["List-Unsubscribe-Post"]) != 1 {
			t.Fatalf("Fields(%q, %q) = %q (%v)", link, mailto, out, err)
		}
		v := h.Get("List-Unsubscribe")
		if strings.Count(v, "<") != strings.Count(v, ">") || strings.Count(v, "<") > 2 || !strings.HasPrefix(v, "<http") {
			t.Fatalf("List-Unsubscribe %q", v)
		}
	})
}
