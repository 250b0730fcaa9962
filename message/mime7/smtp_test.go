package mime7

import (
	"strings"
	"testing"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/outbox-mail/outbox/internal/smtpsink"
)

// TestDowngradeToSevenBitServer sends 8-bit messages, downgraded, to a
// real go-smtp server that does not offer 8BITMIME, and checks that what
// it received is 7-bit MIME decoding, with both parsers, to the
// original's content. go-smtp's own client sends them: this package is
// below outbox's.
func TestDowngradeToSevenBitServer(t *testing.T) {
	sink, err := smtpsink.Start(smtpsink.Options{Hide: []string{"8BITMIME"}})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Stop()
	big := strings.Repeat("Grüße aus Köln, eine lange Zeile nach der anderen. ", 20) + "\r\n"
	msgs := []string{
		"From: a@example.com\r\nTo: b@example.net\r\nSubject: plain\r\n\r\nGrüße\r\n.dot line\r\n",
		multipartMsg(sevenBitPart,
			"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"+strings.Repeat(big, 3000),
			b64Part,
			"Content-Type: text/html; charset=utf-8\r\n\r\n<p>"+longLine+"é</p>\r\n",
			"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n\r\nSubject: fwd\r\n\r\n日本語\r\n"),
	}
	c, err := gosmtp.Dial(sink.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("8BITMIME"); ok {
		t.Fatal("the server offers 8BITMIME")
	}
	for _, msg := range msgs {
		body, err := Downgrade(strings.NewReader(msg))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.SendMail("a@example.com", []string{"b@example.net"}, body); err != nil {
			t.Fatal(err)
		}
	}
	got := sink.Received()
	if len(got) != len(msgs) {
		t.Fatalf("server got %d messages, want %d", len(got), len(msgs))
	}
	for i, msg := range msgs {
		if got[i].EightBit {
			t.Errorf("message %d was sent with BODY=8BITMIME", i)
		}
		check7bit(t, got[i].Data, false)
		sameContent(t, msg, got[i].Data)
	}
}
