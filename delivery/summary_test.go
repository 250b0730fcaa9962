package delivery_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/delivery"
	"github.com/outbox-mail/outbox/internal/smtpsink"
	"github.com/outbox-mail/outbox/queue"
)

// TestAttemptSummary: a delivered attempt keeps, without its transcript
// (the default policy keeps transcripts of failures only), which route it
// took, which server answered (name and address) and that server's reply.
func TestAttemptSummary(t *testing.T) {
	st := openStore(t)
	sink := startSink(t, smtpsink.Options{})
	startDeliverer(t, delivery.Config{Store: st, Transport: relayTo(t, sink.Addr()), Retry: fastRetry})
	id := enqueue(t, st, 1, "r@dest.test")
	waitStatus(t, st, id, queue.StatusDelivered)
	var as []queue.Attempt
	deadline := time.Now().Add(10 * time.Second)
	for len(as) == 0 && time.Now().Before(deadline) {
		as, _ = st.Attempts(context.Background(), id)
		time.Sleep(10 * time.Millisecond)
	}
	if len(as) != 1 {
		t.Fatalf("%d attempts, want 1", len(as))
	}
	a := as[0]
	if a.Route != "relay:"+sink.Addr() || !strings.Contains(a.Host, "["+sink.Addr()+"]") ||
		!strings.HasPrefix(a.Reply, "250 ") || a.Transcript != "" {
		t.Errorf("attempt summary route %q host %q reply %q transcript %d bytes; want the relay, its address, its 250 and no transcript",
			a.Route, a.Host, a.Reply, len(a.Transcript))
	}
}
