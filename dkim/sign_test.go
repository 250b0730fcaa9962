package dkim

import (
	"bytes"
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"
)

const simpleMsg = "From: Alice <alice@example.com>\r\n" +
	"To: Bob <bob@example.net>\r\n" +
	"Subject: Hello\r\n" +
	"Date: Mon, 02 Jan 2006 15:04:05 +0000\r\n" +
	"Message-ID: <1@example.com>\r\n" +
	"X-Unsigned: not in h=\r\n" +
	"\r\n" +
	"Hi Bob,\r\n\r\nsee you  \t soon.  \r\n\r\n\r\n"

func TestSignRSA(t *testing.T) {
	k := Key{Domain: "example.com", Selector: "s2048", Signer: testRSA(t)}
	s, dns := setup(t, k)
	signed := sign(t, s, []byte(simpleMsg))
	checkBoth(t, dns, signed, "example.com")
	sig := head(signed)
	for _, want := range []string{"a=rsa-sha256;", "c=relaxed/relaxed;", "d=example.com;", "s=s2048;"} {
		if !strings.Contains(sig, want) {
			t.Errorf("signature lacks %q:\n%s", want, sig)
		}
	}
	if h := hTag(t, signed); h != "From:Subject:Date:Message-ID:To:From" {
		t.Errorf("h=%s, want the present fields and From oversigned", h)
	}
}

func TestSignEd25519(t *testing.T) {
	k := Key{Domain: "example.com", Selector: "ed", Signer: testEd25519(t)}
	s, dns := setup(t, k)
	signed := sign(t, s, []byte(simpleMsg))
	checkBoth(t, dns, signed, "example.com")
	if !strings.Contains(head(signed), "a=ed25519-sha256;") {
		t.Errorf("not an Ed25519 signature:\n%s", head(signed))
	}
}

// hTag returns the h= of the first signature, white space removed.
func hTag(t *testing.T, signed []byte) string {
	t.Helper()
	m := regexp.MustCompile(`h=([^;]*);`).FindSubmatch(signed)
	if m == nil {
		t.Fatalf("no h= in\n%s", head(signed))
	}
	return strings.Join(strings.Fields(string(m[1])), "")
}

var _ = bytes.NewReader
var _ = errors.Is
var _ = io.EOF
