package submission

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"
	"time"

	gomessage "github.com/emersion/go-message"

	"github.com/outbox-mail/outbox/internal/smtpsink"
	"github.com/outbox-mail/outbox/message/mime7"
	"github.com/outbox-mail/outbox/smtp"
)

// An 8-bit message submitted with BODY=8BITMIME, downgraded on its way
// to a real go-smtp server that does not offer 8BITMIME, arrives as 7-bit
// MIME that decodes, with go-message and with net/mail + mime/multipart,
// to what was submitted.
func TestDowngradeToServerWithout8BITMIME(t *testing.T) {
	msg := dated + "From: a@example.com\r\nTo: b@example.com\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n" +
		"--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGrüße aus Köln\r\n.line with a dot\r\n" +
		"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + strings.Repeat("ü", 700) + "\r\n" +
		"--b\r\nContent-Type: application/pdf; name=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nplain ASCII part\r\n" +
		"--b--\r\n"
	f := newFixture(t, func(c *Config) { c.AllowNoAuthOnLoopback = true; c.Users = nil })
	c := f.dial()
	c.must("EHLO client.example", 250)
	c.must("MAIL FROM:<a@example.com> BODY=8BITMIME", 250)
	c.must("RCPT TO:<b@example.com>", 250)
	code, reply := c.data(msg)
	if code != 250 {
		t.Fatalf("DATA: %d %s", code, reply)
	}
	_, stored := f.message(queuedID(t, reply))

	// A real go-smtp server that does not offer 8BITMIME.
	sink, err := smtpsink.Start(smtpsink.Options{Hide: []string{"8BITMIME"}})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The way delivery sends it: the pool, with mime7.Downgrade as the hook
	// it calls for an 8-bit body and a server without 8BITMIME.
	pool := smtp.NewPool(&smtp.PoolOptions{Addr: sink.Addr()})
	defer pool.Close()
	env := &smtp.Envelope{From: "a@example.com", Recipients: []string{"b@example.com"}, EightBit: true}
	res, err := pool.Send(ctx, env, bytes.NewReader(stored), &smtp.SendOptions{Downgrade: mime7.Downgrade})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Downgraded {
		t.Error("SendResult.Downgraded is false")
	}
	// One that cannot be downgraded (8-bit header, no SMTPUTF8) fails
	// locally and for good with 5.6.3 and mime7's reason.
	bad := dated + "Subject: Grüße\r\n\r\nGrüße\r\n"
	_, err = pool.Send(ctx, env, strings.NewReader(bad), &smtp.SendOptions{Downgrade: mime7.Downgrade})
	var se *smtp.Error
	if !errors.As(err, &se) || se.Code != 554 || se.EnhancedCode != (smtp.EnhancedCode{5, 6, 3}) || !strings.Contains(se.Message, "SMTPUTF8") {
		t.Errorf("8-bit header: %v, want a local 554 5.6.3 naming SMTPUTF8", err)
	}
	rcv := sink.Received()
	if len(rcv) != 1 || rcv[0].EightBit {
		t.Fatalf("server received %d messages (BODY=8BITMIME: %v), want one 7-bit", len(rcv), len(rcv) > 0 && rcv[0].EightBit)
	}
	got := rcv[0].Data
	for i, l := range bytes.Split(got, []byte("\r\n")) {
		if len(l) > 998 || bytes.IndexFunc(l, func(r rune) bool { return r >= 0x80 }) >= 0 {
			t.Fatalf("line %d is not 7-bit within 998 octets: %.80q", i, l)
		}
	}
	for name, decode := range map[string]func(*testing.T, []byte) []string{"go-message": leavesGoMessage, "net/mail": leavesStd} {
		want, have := decode(t, stored), decode(t, got)
		if strings.Join(have, "|") != strings.Join(want, "|") {
			t.Errorf("%s: received message decodes to %q, want %q", name, have, want)
		}
		if len(want) != 4 || !strings.Contains(want[0], "Grüße aus Köln") {
			t.Errorf("%s: the original decodes to %q", name, want)
		}
	}
}

// leavesGoMessage lists each leaf's type and decoded body, with
// emersion/go-message.
func leavesGoMessage(t *testing.T, raw []byte) []string {
	t.Helper()
	e, err := gomessage.Read(bytes.NewReader(raw))
	if err != nil && !gomessage.IsUnknownCharset(err) {
		t.Fatal(err)
	}
	var out []string
	err = e.Walk(func(_ []int, part *gomessage.Entity, err error) error {
		if err != nil || part.MultipartReader() != nil {
			return err
		}
		ct, _, _ := part.Header.ContentType()
		b, err := io.ReadAll(part.Body)
		out = append(out, ct+": "+string(b))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// leavesStd does what leavesGoMessage does with the standard library.
func leavesStd(t *testing.T, raw []byte) []string {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	_, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		var r io.Reader = p
		switch p.Header.Get("Content-Transfer-Encoding") {
		case "base64":
			r = base64.NewDecoder(base64.StdEncoding, p)
		case "quoted-printable":
			r = quotedprintable.NewReader(p)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		out = append(out, ct+": "+string(b))
	}
}
