package mime7

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// downgrade runs Downgrade to its end.
func downgrade(t testing.TB, msg string) ([]byte, error) {
	t.Helper()
	r, err := Downgrade(strings.NewReader(msg))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

// sameContent fails unless got decodes, with both parsers, to what want
// (the original message) decodes to.
func sameContent(t *testing.T, want string, got []byte, stdOnly ...bool) {
	t.Helper()
	norm := []byte(toCRLF(want)) // an 8bit original's line ends, as the wire makes them
	for _, p := range []struct {
		name   string
		decode func([]byte) (content, error)
	}{{"net/mail", decodeStd}, {"go-message", decodeGoMessage}} {
		if p.name == "go-message" && len(stdOnly) > 0 && stdOnly[0] {
			continue
		}
		w, err := p.decode(norm)
		if err != nil {
			t.Fatalf("%s: original: %v", p.name, err)
		}
		g, err := p.decode(got)
		if err != nil {
			t.Fatalf("%s: downgraded: %v\n%s", p.name, err, got)
		}
		if g.String() != w.String() {
			t.Errorf("%s: downgraded message decodes to\n%s\nwant\n%s\nmessage:\n%s", p.name, g, w, got)
		}
	}
}

// toCRLF makes every line end CRLF, as the SMTP client sends them.
func toCRLF(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.ReplaceAll(s, "\n", "\r\n")
}

const (
	sevenBitPart = "Content-Type: text/plain; charset=us-ascii\r\n\r\nplain 7bit text\r\n.leading dot\r\n"
	b64Part      = "Content-Type: application/pdf; name=\"a.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQKJSB0ZXh0Cg==\r\n"
)

func multipartMsg(parts ...string) string {
	var b strings.Builder
	b.WriteString("From: a@example.com\r\nTo: b@example.net\r\nSubject: parts\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\nThis is MIME.\r\n")
	for _, p := range parts {
		b.WriteString("--outer\r\n" + p)
	}
	b.WriteString("--outer--\r\nepilogue\r\n")
	return b.String()
}

var longLine = strings.Repeat("0123456789", 150) // 1,500 octets

func TestDowngrade(t *testing.T) {
	tests := []struct {
		name string
		msg  string
		cte  []string // the Content-Transfer-Encoding fields of the result, in order
		// go-message does not know that a digest's parts default to
		// message/rfc822 (RFC 2046 §5.1.5): only net/mail's walk here does.
		stdOnly bool
	}{
		{"not MIME, 8-bit body", "From: a@example.com\r\nSubject: hi\r\n\r\nGrüße aus Köln\r\nzweite Zeile\r\n",
			[]string{"quoted-printable"}, false},
		{"bare LF", "From: a@example.com\nSubject: hi\n\nGrüße\n.dot\n", []string{"quoted-printable"}, false},
		{"8bit CJK", "From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n" +
			"Content-Transfer-Encoding: 8bit\r\n\r\n日本語の本文です。\r\n二行目\r\n", []string{"base64"}, false},
		{"7-bit labelled 8bit", "From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Transfer-Encoding: 8bit\r\n\r\nonly ascii\r\n",
			[]string{"quoted-printable"}, false},
		{"long line", "From: a@example.com\r\nSubject: long\r\n\r\nshort\r\n" + longLine + "\r\nend\r\n", []string{"quoted-printable"}, false},
		{"NUL", "From: a@example.com\r\n\r\nnul\x00byte\r\n", []string{"quoted-printable"}, false},
		{"multipart", multipartMsg(sevenBitPart,
			"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGrüße\r\n\r\n",
			b64Part,
			"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nraw Grüße and =C3=A9 and a soft=\r\n break\r\n",
			"Content-Type: text/plain\r\n\r\n"+longLine+"\r\n",
			"Content-Type: multipart/alternative; boundary=inner\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"+
				"--inner\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nÄrger\r\n"+
				"--inner\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n<p>Ärger</p>\r\n"+
				"--inner--\r\n",
			"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"+
				"From: c@example.org\r\nSubject: inner\r\n\r\n日本語\r\n"),
			[]string{"base64", "base64", "quoted-printable", "quoted-printable", "7bit", "quoted-printable", "quoted-printable", "7bit", "base64"}, false},
		{"digest", "From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Type: multipart/digest; boundary=d\r\n\r\n" +
			"--d\r\n\r\nFrom: x@example.com\r\nSubject: one\r\n\r\nné\r\n--d--\r\n", []string{"base64"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := downgrade(t, tt.msg)
			if err != nil {
				t.Fatal(err)
			}
			check7bit(t, got, false)
			sameContent(t, tt.msg, got, tt.stdOnly)
			if ctes := fieldValues(got, "Content-Transfer-Encoding"); strings.Join(ctes, ",") != strings.Join(tt.cte, ",") {
				t.Errorf("Content-Transfer-Encoding fields %q, want %q in\n%s", ctes, tt.cte, got)
			}
			if !bytes.Contains(got, []byte("MIME-Version: 1.0\r\n")) {
				t.Errorf("no MIME-Version in\n%s", got)
			}
		})
	}
}

// fieldValues lists the values of every field called name, at any depth.
func fieldValues(raw []byte, name string) []string {
	var out []string
	for _, l := range strings.Split(string(raw), "\r\n") {
		if v, ok := strings.CutPrefix(l, name+": "); ok {
			out = append(out, v)
		}
	}
	return out
}

// A message that is 7-bit already comes out byte for byte.
func TestDowngradeLeaves7BitAlone(t *testing.T) {
	big := strings.Repeat("a 7-bit line of a large text part\r\n", 10_000) // 350 KB: held, spilled, passed on
	for _, msg := range []string{
		multipartMsg(sevenBitPart, b64Part, "Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nsoft=\r\n break =C3=A9\r\n"),
		"From: a@example.com\r\nSubject: plain\r\n\r\n" + big,
		"From: a@example.com\r\nSubject: no body\r\n",
		"From: a@example.com\r\nSubject: no final line end\r\n\r\ntext",
		multipartMsg("Content-Type: message/rfc822\r\n\r\nSubject: inner\r\nContent-Transfer-Encoding: 7bit\r\n\r\n" + big),
		"",
	} {
		got, err := downgrade(t, msg)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != msg {
			t.Errorf("7-bit message changed: %d bytes in, %d out\n%.300s", len(msg), len(got), got)
		}
	}
}

// A 7bit-labelled part whose first 8-bit byte comes after what memory
// holds is re-encoded whole, from the spill file.
func TestDowngradeLate8Bit(t *testing.T) {
	body := strings.Repeat("ascii line of the early part of the body\r\n", 5_000) + "and then: Grüße\r\n"
	msg := multipartMsg("Content-Type: text/plain; charset=utf-8\r\n\r\n"+body, sevenBitPart)
	r, err := Downgrade(strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if r.(*engine).hold.file != nil {
		t.Error("the spill file is still open after the end")
	}
	check7bit(t, got, false)
	sameContent(t, msg, got)
	if !strings.Contains(string(got), "--outer\r\n"+sevenBitPart+"--outer--") {
		t.Error("the 7-bit part after the re-encoded one changed")
	}
}

func TestDowngradeRefuses(t *testing.T) {
	tests := []struct {
		name, msg, want string
		early           bool // refused by Downgrade itself, before anything is read
	}{
		{"8-bit subject", "From: a@example.com\r\nSubject: Grüße\r\n\r\nx\r\n", "8-bit text", true},
		{"long header line", "From: a@example.com\r\nX-Long: " + longLine + "\r\n\r\nx\r\n", "longer than 998", true},
		{"8-bit part header", multipartMsg("Content-Type: text/plain; name=\"ü.txt\"\r\n\r\nx\r\n"), "8-bit text", false},
		{"8-bit preamble", strings.Replace(multipartMsg(sevenBitPart), "This is MIME.", "Das ist MIME für dich.", 1), "preamble", false},
		{"8-bit epilogue", strings.Replace(multipartMsg(sevenBitPart), "epilogue", "épilogue", 1), "epilogue", false},
		{"message/partial", multipartMsg("Content-Type: message/partial; id=x; number=1\r\n\r\nFrom: x@example.com\r\n\r\nGrüße\r\n"),
			"no encoding may be applied", false},
		{"x-uuencode", multipartMsg("Content-Type: text/plain\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nGrüße\r\n"),
			"no encoding may be applied", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Downgrade(strings.NewReader(tt.msg))
			if tt.early != (err != nil) {
				t.Fatalf("Downgrade error %v, want one: %v", err, tt.early)
			}
			if err == nil {
				_, err = io.ReadAll(r)
			}
			var e *Error
			if !errors.As(err, &e) || !strings.Contains(e.Reason, tt.want) {
				t.Fatalf("error %v, want an *Error saying %q", err, tt.want)
			}
		})
	}
}

// LimitLines keeps 8-bit parts as they are and re-encodes only what has a
// line over 998 octets.
func TestLimitLines(t *testing.T) {
	eight := "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGrüße\r\n"
	msg := multipartMsg(eight, "Content-Type: text/plain; charset=utf-8\r\n\r\nGrüße "+longLine+"\r\n", b64Part,
		"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"+strings.Repeat("QUJD", 400)+"\r\n",
		"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"+
			strings.Repeat("caf=C3=A9 ", 150)+"=\r\nend\r\n")
	r, err := LimitLines(strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	check7bit(t, got, true)
	sameContent(t, msg, got)
	if !strings.Contains(string(got), "--outer\r\n"+eight+"--outer\r\n") {
		t.Errorf("8-bit part changed:\n%s", got)
	}
	if ctes := fieldValues(got, "Content-Transfer-Encoding"); strings.Join(ctes, ",") != "8bit,quoted-printable,base64,base64,quoted-printable" {
		t.Errorf("Content-Transfer-Encoding fields %q", ctes)
	}
}

// Check passes every byte through and refuses only what LimitLines could
// not mend.
func TestCheck(t *testing.T) {
	ok := []string{
		"From: a@example.com\nSubject: Grüße\n\n" + longLine + "\n",
		multipartMsg("Content-Type: text/plain\r\n\r\n"+longLine+"\r\n", b64Part),
	}
	for _, msg := range ok {
		got, err := io.ReadAll(Check(strings.NewReader(msg)))
		if err != nil || string(got) != msg {
			t.Errorf("Check changed or refused a mendable message: %v", err)
		}
	}
	bad := []string{
		"From: a@example.com\r\nX-Long: " + longLine + "\r\n\r\nx\r\n",
		multipartMsg("Content-Type: text/plain\r\nX-Long: " + longLine + "\r\n\r\nx\r\n"),
		strings.Replace(multipartMsg(sevenBitPart), "This is MIME.", longLine, 1),
		multipartMsg("Content-Type: message/external-body; access-type=x\r\n\r\n" + longLine + "\r\n"),
	}
	for i, msg := range bad {
		_, err := io.ReadAll(Check(strings.NewReader(msg)))
		var e *Error
		if !errors.As(err, &e) || !strings.Contains(e.Reason, "998") {
			t.Errorf("bad[%d]: error %v, want an *Error naming the 998-octet limit", i, err)
		}
	}
}
