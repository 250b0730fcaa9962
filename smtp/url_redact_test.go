package smtp

import (
	"net/url"
	"strings"
	"testing"
)

// leaks returns the first stretch of at least 4 bytes of secret that text
// holds, or "".
func leaks(text, secret string) string {
	for i := 0; i+4 <= len(secret); i++ {
		if strings.Contains(text, secret[i:i+4]) {
			return secret[i : i+4]
		}
	}
	return ""
}

// A relay URL whose password is not percent-encoded is refused with an
// error that holds no part of the user information, whatever the URL
// parser made of the rest.
func TestParseRelayURLErrorsHideThePassword(t *testing.T) {
	const user = "qzkwvj"
	passwords := []string{
		"Xq7/zK9v", "7734/1290", "/Lm4nB8", "p4?Wm8Lr", "Tn6?starttls=off", "Ab#9Cd0E", "8812#4455",
		"hT2@fG/5kq", "k8:Jz/Qw", "93:71/8826", "Vb3%zzMq", "Vb3%2",
		"Gx5 Hy6J", "Wc[3]Ex9", "Yf/?#@:Ub7",
	}
	for _, pw := range passwords {
		for _, tmpl := range []string{
			"smtp://USER:PASS@mail.example.com",
			"smtps://USER:PASS@mail.example.com:465",
			"smtp://USER:PASS@mail.example.com:2525?starttls=required",
			"smtp://USER:PASS@[::1]:25",
			"smtp:USER:PASS@mail.example.com",
			"USER:PASS@mail.example.com",
		} {
			in := strings.NewReplacer("USER", user, "PASS", pw).Replace(tmpl)
			r, err := ParseRelayURL(in)
			if err == nil {
				t.Errorf("%q parsed as %+v; want an error", in, r)
				continue
			}
			if s := leaks(err.Error(), pw); s != "" {
				t.Errorf("%q: error %q shows %q of the password", in, err, s)
			}
			if s := leaks(err.Error(), user); s != "" {
				t.Errorf("%q: error %q shows %q of the user name", in, err, s)
			}
		}
	}
}

// The reviewer's two examples now get the generic hint.
func TestParseRelayURLMalformedHint(t *testing.T) {
	for _, in := range []string{"smtp://bob:s3cr3t/xyz@host", "smtp://bob:1234/secretpart@host", "smtp://bob:12#defg@host"} {
		_, err := ParseRelayURL(in)
		if err == nil || !strings.Contains(err.Error(), "percent-encoded") ||
			strings.Contains(err.Error(), "s3cr") || strings.Contains(err.Error(), "secret") ||
			strings.Contains(err.Error(), "1234") || strings.Contains(err.Error(), "defg") {
			t.Errorf("%q: %v", in, err)
		}
	}
}

// The same passwords, percent-encoded, parse; so do : and @, which the
// user information may hold as they are.
func TestParseRelayURLEncodedPasswords(t *testing.T) {
	for _, pw := range []string{"Xq7/zK9v", "p4?Wm8Lr", "Ab#9Cd0E", "Vb3%zzMq", "Yf/?#@:Ub7", "Gx5 Hy6J"} {
		in := "smtp://" + url.UserPassword("qzkwvj", pw).String() + "@mail.example.com:2525?starttls=required"
		r, err := ParseRelayURL(in)
		if err != nil || r.Password != pw || r.Username != "qzkwvj" || r.Addr() != "mail.example.com:2525" || r.StartTLS != TLSRequired {
			t.Errorf("%q: %+v, %v", in, r, err)
		}
	}
	for _, tc := range []struct{ in, pass string }{
		{"smtp://qzkwvj:k8:Jz@mail.example.com", "k8:Jz"},
		{"smtp://qzkwvj:hT2@fG5@mail.example.com:25", "hT2@fG5"},
	} {
		r, err := ParseRelayURL(tc.in)
		if err != nil || r.Password != tc.pass || r.Host != "mail.example.com" {
			t.Errorf("%q: %+v, %v", tc.in, r, err)
		}
	}
}
