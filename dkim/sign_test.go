package dkim

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"github.com/outbox-mail/outbox/message"
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
	t.Parallel()
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
	for i, l := range strings.Split(sig, "\r\n") {
		if len(l) > lineWidth {
			t.Errorf("signature line %d is %d octets long: %q", i, len(l), l)
		}
	}
}

func TestSignEd25519(t *testing.T) {
	t.Parallel()
	k := Key{Domain: "example.com", Selector: "ed", Signer: testEd25519(t)}
	s, dns := setup(t, k)
	signed := sign(t, s, []byte(simpleMsg))
	checkBoth(t, dns, signed, "example.com")
	if !strings.Contains(head(signed), "a=ed25519-sha256;") {
		t.Errorf("not an Ed25519 signature:\n%s", head(signed))
	}
}

// Two keys for one domain (RSA and Ed25519 side by side, or an old and a
// new key during a rotation) give two signatures, each verifying alone.
func TestDualSigning(t *testing.T) {
	t.Parallel()
	old := Key{Domain: "example.com", Selector: "2024", Signer: testRSA(t)}
	ed := Key{Domain: "example.com", Selector: "2025", Signer: testEd25519(t)}
	s, dns := setup(t, old, ed)
	signed := sign(t, s, []byte(simpleMsg))
	checkBoth(t, dns, signed, "example.com", "example.com")
	for _, sel := range []string{"s=2024;", "s=2025;"} {
		if !strings.Contains(head(signed), sel) {
			t.Errorf("no signature with %s", sel)
		}
	}
}

// Mail from a subdomain is signed by the most specific domain that covers
// it; mail from elsewhere is not signed, and its body is not read.
func TestDomainChoice(t *testing.T) {
	t.Parallel()
	parent := Key{Domain: "Example.COM", Selector: "p", Signer: testEd25519(t)}
	child := Key{Domain: "mail.example.com", Selector: "c", Signer: testEd25519(t)}
	other := Key{Domain: "example.org", Selector: "o", Signer: testEd25519(t)}
	s, dns := setup(t, parent, child, other)
	for _, tc := range []struct{ from, d string }{
		{"a@example.com", "example.com"},
		{"a@news.example.com", "example.com"},
		{"a@mail.example.com", "mail.example.com"},
		{"a@x.mail.example.com", "mail.example.com"},
		{"A@EXAMPLE.org", "example.org"},
		{"a@example.com, b@mail.example.com", "example.com"},
	} {
		msg := "From: " + tc.from + "\r\nSubject: x\r\n\r\nbody\r\n"
		signed := sign(t, s, []byte(msg))
		// Which key signs is the question here; go-msgauth answers it.
		if vs := verifyGo(t, dns, signed); len(vs) != 1 || vs[0].Err != nil || vs[0].Domain != tc.d {
			t.Errorf("From %s: %v, want one passing signature by %s", tc.from, vs, tc.d)
		}
	}

	for _, from := range []string{"a@example.net", "a@badexample.com", "a@[192.0.2.1]", "a@example.com, b@example.net"} {
		body := &countingReader{r: strings.NewReader(strings.Repeat("line of body\r\n", 100_000))}
		msg := io.MultiReader(strings.NewReader("From: "+from+"\r\nSubject: x\r\n\r\n"), body)
		sig, err := s.Sign(msg)
		if err != nil || sig != nil {
			t.Errorf("From %s: Sign = %q, %v; want nothing and no error", from, sig, err)
		}
		if body.n > 64<<10 {
			t.Errorf("From %s: read %d bytes of a body it does not sign", from, body.n)
		}
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// A message composed by the message package with attachments, an inline
// image, HTML and non-ASCII everywhere, signed and verified.
func TestMultipartWithAttachments(t *testing.T) {
	t.Parallel()
	k := Key{Domain: "bücher.example", Selector: "sel", Signer: testRSA(t)}
	ed := Key{Domain: "bücher.example", Selector: "ed", Signer: testEd25519(t)}
	s, dns := setup(t, k, ed)
	rng := rand.New(rand.NewPCG(1, 2))
	bin := make([]byte, 300_000)
	for i := range bin {
		bin[i] = byte(rng.Uint32())
	}
	m := &message.Message{
		From:    message.Address{Name: "Jürgen Groß", Email: "jürgen@bücher.example"},
		To:      []message.Address{{Name: "Zoë, the reader", Email: "zoe@example.net"}, {Email: "ann@example.org"}},
		Cc:      []message.Address{{Name: "日本語の名前", Email: "jp@example.jp"}},
		Subject: "Rechnung für März — " + strings.Repeat("sehr lange Betreffzeile ", 8),
		Text:    "Grüße\n\nSee the attachments.\n",
		HTML:    "<p>Grüße <img src=\"cid:logo@x\"></p>",
		Headers: [][2]string{{"List-Unsubscribe", "<https://example.com/u/abc>"}, {"List-Unsubscribe-Post", "List-Unsubscribe=One-Click"}},
		Attachments: []message.Attachment{
			{Filename: "Rechnung März.pdf", ContentType: "application/pdf", Content: bytes.NewReader(bin)},
			{Filename: "notes.txt", Content: strings.NewReader("a\nb  \n\n\n")},
			{Filename: "logo.png", ContentType: "image/png", Content: bytes.NewReader(bin[:5000]), Inline: true, ContentID: "logo@x"},
		},
	}
	var buf bytes.Buffer
	if _, err := m.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	signed := sign(t, s, buf.Bytes())
	checkBoth(t, dns, signed, "xn--bcher-kva.example", "xn--bcher-kva.example")
	h := hTag(t, signed)
	for _, want := range []string{"From", "To", "Cc", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type", "List-Unsubscribe", "List-Unsubscribe-Post"} {
		if !strings.Contains(":"+h+":", ":"+want+":") {
			t.Errorf("h=%s lacks %s", h, want)
		}
	}
}

// Raw UTF-8 (RFC 6532) and RFC 2047 headers, folded fields, a repeated
// field, white space everywhere and a body without a final line break.
func TestRawHeaders(t *testing.T) {
	t.Parallel()
	k := Key{Domain: "example.com", Selector: "sel", Signer: testRSA(t)}
	ed := Key{Domain: "example.com", Selector: "ed", Signer: testEd25519(t)}
	s, dns := setup(t, k, ed)
	msg := "Received: from a by b; Mon, 02 Jan 2006 15:04:05 +0000\r\n" +
		"From: \"Groß, Jürgen\" <jürgen@example.com>\r\n" +
		"To: =?utf-8?q?Zo=C3=AB?= <zoe@example.net>,\r\n" +
		"\t\"Ann\"   <ann@example.org>,\r\n" +
		"  bob@example.org\r\n" +
		"Subject:   Grüße   aus\tKöln \r\n" +
		"   und Bonn  \r\n" +
		"Comments: one\r\n" +
		"Comments: two\r\n" +
		"References: <a@x>\r\n" +
		"References: <b@x>\r\n" +
		"content-type: text/plain; charset=utf-8\r\n" +
		"\r\n" +
		"Grüße \t\r\n \r\n\r\nlast line without a break"
	signed := sign(t, s, []byte(msg))
	checkBoth(t, dns, signed, "example.com", "example.com")
	if h := hTag(t, signed); h != "From:Subject:To:Content-Type:References:References:From" {
		t.Errorf("h=%s", h)
	}
}

// Bare LF, bare CR and a missing final line break are normalised before
// signing exactly as the smtp client normalises them on the wire, so the
// signature verifies on what is sent.
func TestLineEndingsAsSent(t *testing.T) {
	t.Parallel()
	k := Key{Domain: "example.com", Selector: "ed", Signer: testEd25519(t)}
	s, dns := setup(t, k)
	lf := strings.ReplaceAll(simpleMsg, "\r\n", "\n")
	mixed := strings.Replace(lf, "\n", "\r", 3) + "trailing\r\r\nno end"
	for name, msg := range map[string]string{"LF": lf, "mixed": mixed, "no final CRLF": strings.TrimRight(simpleMsg, "\r\n")} {
		got := sendThroughSMTP(t, s, msg)
		checkBoth(t, dns, got, "example.com")
		if bytes.Contains(bytes.ReplaceAll(got, []byte("\r\n"), nil), []byte("\n")) {
			t.Errorf("%s: the sink received a bare LF", name)
		}
	}
	// The CRLF and LF forms of a message have the same body hash.
	a, _ := s.Sign(strings.NewReader(simpleMsg))
	b, _ := s.Sign(strings.NewReader(lf))
	if bh(t, a) != bh(t, b) {
		t.Errorf("bh differs between CRLF and LF input")
	}
}

func bh(t *testing.T, sig []byte) string {
	m := regexp.MustCompile(`bh=([^;]*);`).FindSubmatch(sig)
	if m == nil {
		t.Fatalf("no bh= in %q", sig)
	}
	return string(m[1])
}

// Tampering with the body or with a signed header, or adding a From,
// breaks the signature for every verifier; an unsigned header does not.
func TestTamperingDetected(t *testing.T) {
	t.Parallel()
	k := Key{Domain: "example.com", Selector: "sel", Signer: testRSA(t)}
	ed := Key{Domain: "example.com", Selector: "ed", Signer: testEd25519(t)}
	s, dns := setup(t, k, ed)
	signed := string(sign(t, s, []byte(simpleMsg)))
	for name, bad := range map[string]string{
		"body":          strings.Replace(signed, "see you", "see yoU", 1),
		"body appended": signed + "P.S. send money\r\n",
		"subject":       strings.Replace(signed, "Subject: Hello", "Subject: Hellp", 1),
		"from":          strings.Replace(signed, "alice@example.com", "alice@example.co", 1),
		"second From":   strings.Replace(signed, "X-Unsigned:", "From: Mallory <m@evil.example>\r\nX-Unsigned:", 1),
		"From appended": strings.Replace(signed, "\r\n\r\n", "\r\nFrom: x@evil.example\r\n\r\n", 1),
	} {
		t.Run(name, func(t *testing.T) {
			if bad == signed {
				t.Fatal("the tampering changed nothing")
			}
			checkFails(t, dns, []byte(bad))
		})
	}
	t.Run("unsigned header", func(t *testing.T) {
		ok := strings.Replace(signed, "X-Unsigned: not in h=", "X-Unsigned: changed", 1)
		checkBoth(t, dns, []byte(ok), "example.com", "example.com")
	})
}

// Messages that cannot be signed say why, with ErrUnsignable.
func TestUnsignable(t *testing.T) {
	s, err := NewSigner(Key{Domain: "example.com", Selector: "s", Signer: testEd25519(t)})
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct{ msg, want string }{
		"no From":      {"To: a@example.com\r\n\r\nx\r\n", "no From field"},
		"two From":     {"From: a@example.com\r\nFrom: b@example.com\r\n\r\nx\r\n", "several From fields"},
		"bad From":     {"From: <a@example.com\r\n\r\nx\r\n", "From field"},
		"group":        {"From: undisclosed:;\r\n\r\nx\r\n", "no mailbox"},
		"empty":        {"", "no From field"},
		"huge signed":  {"From: a@example.com\r\nSubject: " + strings.Repeat("x", 300<<10) + "\r\n\r\n", "longer than"},
		"garbage only": {"\x00\xff\r\n\r\n", "header line 1 is not a field"},
		"mbox From_":   {"From alice Mon Jan  2 15:04:05 2006\nFrom: a@example.com\n\nx\n", "header line 1 is not a field"},
		"no colon":     {"From: a@example.com\r\nTo\r\n\r\nx\r\n", "header line 2 is not a field"},
		"continuation": {" x\r\nFrom: a@example.com\r\n\r\nx\r\n", "starts with a continuation"},
	} {
		sig, err := s.Sign(strings.NewReader(tc.msg))
		if !errors.Is(err, ErrUnsignable) || !strings.Contains(err.Error(), tc.want) || sig != nil {
			t.Errorf("%s: Sign = %q, %v; want ErrUnsignable saying %q", name, sig, err, tc.want)
		}
	}
	// A reader's error is passed on, not taken for the message's fault.
	boom := errors.New("store went away")
	_, err = s.Sign(io.MultiReader(strings.NewReader("From: a@example.com\r\n\r\nbody"), errReader{boom}))
	if !errors.Is(err, boom) || errors.Is(err, ErrUnsignable) {
		t.Errorf("Sign with a failing reader: %v", err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// A message that is all header (no empty line, no body) is signed over an
// empty body and verifies as sent.
func TestHeaderOnly(t *testing.T) {
	t.Parallel()
	k := Key{Domain: "example.com", Selector: "ed", Signer: testEd25519(t)}
	s, dns := setup(t, k)
	signed := sign(t, s, []byte("From: a@example.com\r\nSubject: no body"))
	// go-msgauth cannot read a message without the empty line.
	if vs := verifyGo(t, dns, append(signed, "\r\n"...)); len(vs) != 1 || vs[0].Err != nil {
		t.Errorf("go-msgauth, with the empty line added: %v", vs)
	}
	checkExternal(t, dns, signed, "example.com")
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
