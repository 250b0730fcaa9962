package dkim

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"

	msgauth "github.com/emersion/go-msgauth/dkim"
)

// FuzzSign signs arbitrary messages: Sign never fails but with
// ErrUnsignable, and whatever it signs, go-msgauth verifies as sent.
func FuzzSign(f *testing.F) {
	for _, seed := range []string{
		simpleMsg,
		"From: a@example.com\nSubject: lf\n\nbody\n",
		"From: a@example.com\r\nSubject:  folded\r\n\t line\r\n\r\n \t\r\n\r\nx  y\t\r\n\r\n",
		"From: a@example.com\r\n\r\n",
		"From: \"Jürgen\" <j@sub.example.com>\r\nTo: =?utf-8?q?a?= <b@c>\r\n\r\nä\r",
		"x\r\nFrom: a@example.com\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	_, priv, _ := ed25519.GenerateKey(nil)
	k := Key{Domain: "example.com", Selector: "f", Signer: priv}
	s, err := NewSigner(k)
	if err != nil {
		f.Fatal(err)
	}
	record, _ := TXTRecord(priv.Public())
	lookup := func(string) ([]string, error) { return []string{record}, nil }
	f.Fuzz(func(t *testing.T, msg []byte) {
		sig, err := s.Sign(bytes.NewReader(msg))
		if err != nil {
			if !errors.Is(err, ErrUnsignable) {
				t.Fatalf("Sign: %v", err)
			}
			return
		}
		if sig == nil {
			return
		}
		signed := append(sig, normalize(t, msg)...)
		if !bytes.Contains(signed, []byte("\r\n\r\n")) {
			signed = append(signed, "\r\n"...) // go-msgauth needs the empty line
		}
		vs, err := msgauth.VerifyWithOptions(bytes.NewReader(signed), &msgauth.VerifyOptions{LookupTXT: lookup})
		if err != nil {
			t.Fatalf("go-msgauth: %v\n%q", err, signed)
		}
		if len(vs) < 1 || vs[0].Err != nil {
			t.Fatalf("go-msgauth: %v\n%q", vs[0].Err, signed)
		}
	})
}
