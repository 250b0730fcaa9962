package delivery_test

import (
	"context"
	"strings"
	"testing"

	"github.com/outbox-mail/outbox/delivery"
	"github.com/outbox-mail/outbox/dkim"
	"github.com/outbox-mail/outbox/internal/smtpsink"
	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/smtp"
)

// BenchmarkDeliverDKIM is BenchmarkDeliverToSink over one connection
// with DKIM signing: no signer, one RSA-2048 key, one Ed25519 key, and a
// key for another domain (the header is read, nothing is signed). The
// difference in cpu-µs/msg is what signing costs per message.
func BenchmarkDeliverDKIM(b *testing.B) {
	rk, ek := testKeys(b)
	for _, tc := range []struct {
		name string
		key  *dkim.Key
	}{
		{"none", nil},
		{"rsa2048", &dkim.Key{Domain: "app.test", Selector: "r", Signer: rk}},
		{"ed25519", &dkim.Key{Domain: "app.test", Selector: "e", Signer: ek}},
		{"other-domain", &dkim.Key{Domain: "elsewhere.test", Selector: "e", Signer: ek}},
	} {
		b.Run("key="+tc.name, func(b *testing.B) {
			var dv delivery.Deliverability
			if tc.key != nil {
				dv.DKIM = newKeyring(b, *tc.key).signer
			}
			sink := startSink(b, smtpsink.Options{})
			st := openStore(b)
			for range b.N {
				if _, err := st.Enqueue(context.Background(), queue.NewMessage{From: "sender@app.test",
					Recipients: []string{"r@x.test"}, Body: strings.NewReader(benchBody)}); err != nil {
					b.Fatal(err)
				}
			}
			r, _ := smtp.ParseRelayURL("smtp://" + sink.Addr() + "?starttls=off")
			tr := delivery.NewSMTPRelay(r, nil, smtp.PoolOptions{MaxConns: 1, MaxMessages: 1000})
			defer tr.Close()
			runToSettled(b, st, delivery.Config{Store: st, Transport: tr, MaxConnections: 1,
				DestinationConnections: 1, PollInterval: -1, Logger: quietLog, Deliverability: dv},
				func() int { return len(sink.Received()) })
		})
	}
}
