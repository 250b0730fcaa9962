package dkim

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/internal/smtpsink"
	"github.com/outbox-mail/outbox/smtp"
)

// sendThroughSMTP signs msg with s.Open and sends it with the smtp client
// to a real go-smtp server on loopback, once with BDAT and once with DATA,
// and returns what the server received (the same both times).
func sendThroughSMTP(t *testing.T, s *Signer, msg string) []byte {
	t.Helper()
	sink, err := smtpsink.Start(smtpsink.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Stop()
	var got [][]byte
	for _, noChunking := range []bool{false, true} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		body, err := s.Open(func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(msg)), nil })
		if err != nil {
			t.Fatal(err)
		}
		c, err := smtp.Dial(ctx, sink.Addr(), &smtp.Options{StartTLS: smtp.TLSOff, DisableChunking: noChunking})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.SendAndQuit(ctx, &smtp.Envelope{From: "bounces@example.com", Recipients: []string{"bob@example.net"}, UTF8: true}, body)
		cancel()
		body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if sink.WaitFor(len(got)+1, 10*time.Second) < len(got)+1 {
			t.Fatal("the sink received nothing")
		}
		r := sink.Received()
		got = append(got, r[len(r)-1].Data)
	}
	if string(got[0]) != string(got[1]) {
		t.Fatalf("BDAT and DATA delivered different bytes:\n%q\n%q", got[0], got[1])
	}
	return got[0]
}
