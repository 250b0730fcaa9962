package delivery_test

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/delivery"
	"github.com/outbox-mail/outbox/dkim"
	"github.com/outbox-mail/outbox/internal/smtpsink"
	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/smtp"
)

// eightBitMessage is an 8-bit text message with an 8-bit attachment
// part, and the text each part decodes to.
func eightBitMessage(from string) ([]byte, []string) {
	text, att := "Grüße aus Köln — ein Text mit Umlauten.\r\n", "Ärger\r\nüber\r\n"
	msg := "From: " + from + "\r\nTo: r@dest.test\r\nSubject: plain ASCII subject\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: 8bit\r\n\r\n" + text + "--b\r\nContent-Type: text/plain; charset=utf-8\r\n" +
		"Content-Disposition: attachment; filename=a.txt\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + att + "--b--\r\n"
	// The CRLF before a boundary belongs to the boundary (RFC 2046 §5.1.1).
	return []byte(msg), []string{strings.TrimSuffix(text, "\r\n"), strings.TrimSuffix(att, "\r\n")}
}

// decodedParts decodes a multipart message's parts with net/mail and
// mime/multipart, asserting that nothing in it is 8-bit.
func decodedParts(t *testing.T, data []byte) []string {
	t.Helper()
	for i, c := range data {
		if c >= 0x80 {
			t.Fatalf("an 8-bit byte at offset %d of what the 7-bit server received", i)
		}
	}
	m, err := mail.ReadMessage(bytes.NewReader(data))
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
		switch strings.ToLower(p.Header.Get("Content-Transfer-Encoding")) {
		case "quoted-printable":
			r = quotedprintable.NewReader(p)
		case "base64":
			t.Fatalf("a text part was base64-encoded; quoted-printable expected for mostly-ASCII text")
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
}

// TestDowngradeFor7BitServer: an 8-bit message, stored without a
// declaration (the store finds its 8-bit bytes), reaches a real server
// that does not offer 8BITMIME as valid 7-bit MIME whose parts decode to
// the original text; signed mail is signed over what is sent, so the
// signature verifies after the downgrade.
func TestDowngradeFor7BitServer(t *testing.T) {
	rk, _ := testKeys(t)
	kr := newKeyring(t, dkim.Key{Domain: "shop.test", Selector: "s", Signer: rk})
	st := openStore(t)
	sink := startSink(t, smtpsink.Options{Hide: []string{"8BITMIME"}})
	startDeliverer(t, delivery.Config{Store: st, Transport: relayTo(t, sink.Addr()), Retry: fastRetry,
		Deliverability: delivery.Deliverability{DKIM: kr.signer}})
	signed, want := eightBitMessage("orders@shop.test")
	unsigned, _ := eightBitMessage("someone@other.test")
	a := enqueueRaw(t, st, queue.NewMessage{From: "orders@shop.test", Recipients: []string{"r@dest.test"}}, signed)
	b := enqueueRaw(t, st, queue.NewMessage{From: "someone@other.test", Recipients: []string{"r@dest.test"}}, unsigned)
	for _, id := range []string{a, b} {
		if m := waitStatus(t, st, id, queue.StatusDelivered); !m.EightBit {
			t.Fatalf("message %s is not marked 8-bit", id)
		}
	}
	for _, r := range waitReceived(t, sink, 2) {
		if r.EightBit {
			t.Errorf("sent with BODY=8BITMIME to a server that does not offer it")
		}
		if got := decodedParts(t, r.Data); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
			t.Errorf("downgraded parts decode to %q, want %q", got, want)
		}
		signedOne := bytes.Contains(r.Data, []byte("DKIM-Signature"))
		if bytes.Contains(r.Data, []byte("From: orders@shop.test")) != signedOne {
			t.Errorf("only the mail from shop.test is to be signed; signed %v:\n%s", signedOne, r.Data)
		}
		if signedOne {
			for _, v := range kr.verify(t, r.Data) {
				if v.Err != nil {
					t.Errorf("the signature of the downgraded message does not verify: %v", v.Err)
				}
			}
		}
	}
}

// TestLongLinesReencoded: a body line over 998 octets (accepted at
// submission, where re-encoding can mend it) leaves as quoted-printable
// with no line over 998 octets, and decodes to the same text.
func TestLongLinesReencoded(t *testing.T) {
	st := openStore(t)
	sink := startSink(t, smtpsink.Options{})
	startDeliverer(t, delivery.Config{Store: st, Transport: relayTo(t, sink.Addr()), Retry: fastRetry})
	long := strings.Repeat("0123456789", 150) // 1,500 octets
	raw := []byte("From: a@shop.test\r\nTo: r@dest.test\r\nSubject: long\r\n\r\n" + long + "\r\n")
	id := enqueueRaw(t, st, queue.NewMessage{From: "a@shop.test", Recipients: []string{"r@dest.test"}}, raw)
	if m := waitStatus(t, st, id, queue.StatusDelivered); !m.LongLines {
		t.Fatal("the message is not marked as having long lines")
	}
	r := waitReceived(t, sink, 1)[0]
	for _, l := range strings.Split(string(r.Data), "\r\n") {
		if len(l) > 998 {
			t.Fatalf("a line of %d octets was sent", len(l))
		}
	}
	m, err := mail.ReadMessage(bytes.NewReader(r.Data))
	if err != nil {
		t.Fatal(err)
	}
	if cte := m.Header.Get("Content-Transfer-Encoding"); !strings.EqualFold(cte, "quoted-printable") {
		t.Fatalf("Content-Transfer-Encoding %q, want quoted-printable", cte)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(m.Body))
	if err != nil || strings.TrimRight(string(body), "\r\n") != long {
		t.Errorf("the body decodes to %d octets (%v), want the original line", len(body), err)
	}
	waitSettled(t, st, 10*time.Second)
}

// TestLocalDecisionWorded: a refusal the client decided itself (the
// policy requires STARTTLS, the server does not offer it) is recorded
// with its code but worded as local, never as the server's reply.
func TestLocalDecisionWorded(t *testing.T) {
	st := openStore(t)
	sink := startSink(t, smtpsink.Options{})
	r, err := smtp.ParseRelayURL("smtp://" + sink.Addr() + "?starttls=required")
	if err != nil {
		t.Fatal(err)
	}
	tr := delivery.NewSMTPRelay(r, nil, smtp.PoolOptions{MaxConns: 1})
	t.Cleanup(func() { tr.Close() })
	startDeliverer(t, delivery.Config{Store: st, Transport: tr, Retry: delivery.RetryPolicy{Initial: time.Hour}})
	id := enqueue(t, st, 1, "r@dest.test")
	m := waitStatus(t, st, id, queue.StatusDeferred)
	rc := m.Recipients[0]
	if rc.Code != 454 || !strings.HasPrefix(rc.Text, "decided locally: ") || !strings.Contains(rc.Text, "STARTTLS") {
		t.Errorf("recipient %+v: want 454 worded as a local decision naming STARTTLS", rc)
	}
	if n := len(sink.Received()); n != 0 {
		t.Errorf("the server received %d messages over a connection the policy refused", n)
	}
}
