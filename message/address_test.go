package message

import (
	"errors"
	"strings"
	"testing"
)

func TestParseAddress(t *testing.T) {
	tests := []struct {
		in   string
		want Address
	}{
		{"user@example.com", Address{"", "user@example.com"}},
		{"Alice <alice@example.com>", Address{"Alice", "alice@example.com"}},
		{`"Doe, Jane" <jane@example.com>`, Address{"Doe, Jane", "jane@example.com"}},
		{`"Bob \"B\" Smith" <bob@example.com>`, Address{`Bob "B" Smith`, "bob@example.com"}},
		{"=?utf-8?q?J=C3=B6rg?= <j@example.com>", Address{"Jörg", "j@example.com"}},
		{"张伟 <zhang@example.cn>", Address{"张伟", "zhang@example.cn"}},
		{"user@bücher.example", Address{"", "user@xn--bcher-kva.example"}},
		{"δοκιμή@παράδειγμα.δοκιμή", Address{"", "δοκιμή@παράδειγμα.δοκιμή"}},
		{`"john doe"@example.com`, Address{"", "john doe@example.com"}},
		{"user@[192.0.2.1]", Address{"", "user@[192.0.2.1]"}},
		{"  spaced@example.com  ", Address{"", "spaced@example.com"}},
	}
	for _, tt := range tests {
		got, err := ParseAddress(tt.in)
		if err != nil {
			t.Errorf("ParseAddress(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseAddress(%q) = %#v, want %#v", tt.in, got, tt.want)
		}
		again, err := ParseAddress(got.String())
		if err != nil || again != got {
			t.Errorf("re-parse of %q = %#v, %v; want %#v", got.String(), again, err, got)
		}
	}
}

func TestParseAddressErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"bob@", `"bob@": missing domain`},
		{"bob", `"bob": missing @`},
		{"@example.com", `"@example.com": missing local part`},
		{"", `"": empty address`},
		{"Bob <bob@>", `"Bob <bob@>": missing domain`},
		{"bob@exa mple.com", `"bob@exa mple.com": malformed address`},
		{"bob@-bad-.com", `invalid domain`},
		{"bob@example.com\r\nBcc: victim@example.com", "contains CR or LF"},
		{"bob@example.com\x00", "contains a NUL byte"},
		{"bob\x01@example.com", "control character"},
		{"\xff@example.com", "not valid UTF-8"},
		{strings.Repeat("a", 65) + "@example.com", "local part longer than 64"},
		{"a@" + strings.Repeat("b", 64) + ".com", "invalid domain"},
		{"user@[300.1.1.1]", "malformed address"},
		{"=?utf-8?q?a=0Db?= <a@example.com>", "display name contains CR or LF"},
	}
	for _, tt := range tests {
		_, err := ParseAddress(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseAddress(%q) error %v, want one containing %q", tt.in, err, tt.want)
		}
	}
}

func TestParseAddressList(t *testing.T) {
	got, err := ParseAddressList(`Alice <a@example.com>, "Doe, Jane" <jane@example.com>,b@example.org`)
	if err != nil {
		t.Fatal(err)
	}
	want := []Address{{"Alice", "a@example.com"}, {"Doe, Jane", "jane@example.com"}, {"", "b@example.org"}}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("[%d] = %#v, want %#v", i, got[i], want[i])
		}
	}
	_, err = ParseAddressList("a@example.com, bob@, c@example.com")
	if err == nil || err.Error() != `" bob@": missing domain` {
		t.Errorf("error %v, want the culprit named", err)
	}
}

func TestValidateNamesField(t *testing.T) {
	m := &Message{From: Address{"", "a@example.com"}, To: []Address{{"", "x@example.com"}, {"", "y@example.com"}, {"", "bob@"}}}
	err := m.Validate()
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "to[2]" {
		t.Fatalf("error %v, want a FieldError for to[2]", err)
	}
	if err.Error() != `to[2]: "bob@": missing domain` {
		t.Errorf("message %q", err.Error())
	}
}

func TestEnvelope(t *testing.T) {
	m := &Message{
		From: Address{"", "me@Bücher.example"},
		To:   []Address{{"A", "a@example.com"}, {"", "δοκιμή@παράδειγμα.δοκιμή"}},
		Cc:   []Address{{"A again", "a@EXAMPLE.com"}},
		Bcc:  []Address{{"", "hidden@example.org"}, {"", "a@example.com"}},
	}
	from, rcpts := m.Envelope()
	if from != "me@xn--bcher-kva.example" {
		t.Errorf("from %q", from)
	}
	want := []string{"a@example.com", "δοκιμή@xn--hxajbheg2az3al.xn--jxalpdlp", "hidden@example.org"}
	if strings.Join(rcpts, " ") != strings.Join(want, " ") {
		t.Errorf("recipients %q, want %q", rcpts, want)
	}
	if !m.NeedsSMTPUTF8() {
		t.Error("NeedsSMTPUTF8 false with a UTF-8 local part")
	}
	m.To = m.To[:1]
	if m.NeedsSMTPUTF8() {
		t.Error("NeedsSMTPUTF8 true for ASCII local parts with an IDN domain")
	}
}

func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{
		"user@example.com", "Alice <alice@example.com>", `"Doe, Jane" <jane@example.com>`,
		"=?utf-8?q?J=C3=B6rg?= <j@example.com>", "张伟 <zhang@example.cn>", "user@bücher.example",
		"δοκιμή@παράδειγμα.δοκιμή", `"john doe"@example.com`, "user@[192.0.2.1]", "bob@",
		"=?iso-8859-1?q?=E9t=E9?= <e@example.fr>", `"a\\b" <x@y.z>`, "(comment) a@b.c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddress(s)
		if err != nil {
			return
		}
		if verr := validateAddress(a); verr != nil {
			t.Fatalf("ParseAddress(%q) = %#v, which Validate refuses: %v", s, a, verr)
		}
		r := a.String()
		if strings.ContainsAny(r, "\r\n\x00") {
			t.Fatalf("String() of %#v has a line break or NUL: %q", a, r)
		}
		b, err := ParseAddress(r)
		if err != nil {
			t.Fatalf("ParseAddress(%q) = %#v, String() %q does not re-parse: %v", s, a, r, err)
		}
		if a != b {
			t.Fatalf("ParseAddress(%q) = %#v; String() %q re-parses to %#v", s, a, r, b)
		}
	})
}
