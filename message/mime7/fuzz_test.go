package mime7

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// FuzzDowngrade feeds arbitrary messages to Downgrade: it either refuses
// with an *Error, or gives 7-bit MIME with lines of at most 998 octets
// that decodes (wherever the original decodes) to the original's content,
// with net/mail + mime/multipart and with go-message.
func FuzzDowngrade(f *testing.F) {
	f.Add([]byte("From: a@example.com\r\nSubject: hi\r\n\r\nGrüße\r\n"))
	f.Add([]byte(multipartMsg(sevenBitPart, b64Part,
		"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nÄrger\r\n",
		"Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nraw ü =C3=A9=\r\n\r\n",
		"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n\r\nSubject: x\r\n\r\n日本\r\n")))
	f.Add([]byte("Subject: x\n\n" + strings.Repeat("é", 600) + "\n"))
	f.Add([]byte("Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n\r\nü\r\n--b--\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Downgrade(bytes.NewReader(data))
		var out []byte
		if err == nil {
			out, err = io.ReadAll(r)
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not an *Error", err)
			}
			return
		}
		check7bit(t, out, false)
		norm := []byte(toCRLF(string(data)))
		// Only messages net/mail reads (its header syntax is strict) are
		// compared: for malformed headers the parsers disagree with each
		// other, whatever is sent.
		if _, err := decodeStd(norm); err != nil {
			return
		}
		for _, p := range []struct {
			name   string
			decode func([]byte) (content, error)
		}{{"net/mail", decodeStd}, {"go-message", decodeGoMessage}} {
			want, err := p.decode(norm)
			if err != nil {
				continue // the original does not decode: nothing to compare
			}
			got, err := p.decode(out)
			if err != nil {
				t.Fatalf("%s: the original decodes but the downgraded message does not: %v\n%q\n%q", p.name, err, norm, out)
			}
			if got.String() != want.String() {
				t.Fatalf("%s: downgraded content\n%s\nwant\n%s\nin %q\nout %q", p.name, got, want, norm, out)
			}
		}
	})
}
