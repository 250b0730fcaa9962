package delivery_test

import (
	"testing"
	"time"

	"github.com/outbox-mail/outbox/delivery"
	"github.com/outbox-mail/outbox/internal/smtpsink"
	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/route"
	"github.com/outbox-mail/outbox/smtp"
)

func relayRouting(t *testing.T, def string, routes ...route.Route) *delivery.Routing {
	t.Helper()
	d := route.Target{Kind: route.Capture}
	if def != "capture" {
		var err error
		if d, err = route.ParseTarget(def); err != nil {
			t.Fatal(err)
		}
	}
	tab, err := route.NewTable(route.Route{Target: d}, routes)
	if err != nil {
		t.Fatal(err)
	}
	return &delivery.Routing{Table: tab, SMTP: &smtp.Options{LocalName: "outbox.test", Timeouts: smtp.Timeouts{Dial: 5 * time.Second}}}
}

// TestSetRoutingKeepsMailUnderWay changes a domain's route while a message
// to it is in the middle of its DATA: that one finishes on the old relay,
// the next goes to the new one, and another domain's unchanged route
// keeps delivering.
func TestSetRoutingKeepsMailUnderWay(t *testing.T) {
	hold := make(chan struct{})
	entered := make(chan struct{}, 1)
	oldRelay := startSink(t, smtpsink.Options{Data: func(string, []string, []byte) error {
		entered <- struct{}{}
		<-hold
		return nil
	}})
	newRelay := startSink(t, smtpsink.Options{})
	other := startSink(t, smtpsink.Options{})
	st := openStore(t)
	url := func(s *smtpsink.Sink) string { return "smtp://" + s.Addr() + "?starttls=off" }
	otherRoute := mustRoute(t, "other.test", url(other), 0, "")
	d := startDeliverer(t, delivery.Config{Store: st, Retry: fastRetry,
		Routing: relayRouting(t, "capture", mustRoute(t, "a.test", url(oldRelay), 0, ""), otherRoute)})

	first := enqueue(t, st, 1, "x@a.test")
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		close(hold)
		t.Fatal("the first message never reached the old relay")
	}
	if err := d.SetRouting(relayRouting(t, "capture", mustRoute(t, "a.test", url(newRelay), 0, ""), otherRoute)); err != nil {
		close(hold)
		t.Fatal(err)
	}
	second := enqueue(t, st, 2, "y@a.test")
	waitStatus(t, st, second, queue.StatusDelivered)
	third := enqueue(t, st, 3, "z@other.test")
	waitStatus(t, st, third, queue.StatusDelivered)
	close(hold)
	waitStatus(t, st, first, queue.StatusDelivered)

	if got := countByNumber(oldRelay.Received()); got["1"] != 1 || got["2"] != 0 {
		t.Errorf("old relay got %v; want message 1 only", got)
	}
	if got := countByNumber(newRelay.Received()); got["2"] != 1 || got["1"] != 0 {
		t.Errorf("new relay got %v; want message 2 only", got)
	}
	if got := countByNumber(other.Received()); got["3"] != 1 {
		t.Errorf("the unchanged route got %v; want message 3", got)
	}
}

func TestSetRoutingRefusals(t *testing.T) {
	st := openStore(t)
	fixed := startDeliverer(t, delivery.Config{Store: st, Transport: delivery.Capture{}})
	if err := fixed.SetRouting(relayRouting(t, "mx")); err == nil {
		t.Error("a Deliverer made with a Transport took routing")
	}
	routed := startDeliverer(t, delivery.Config{Store: openStore(t), Routing: relayRouting(t, "smtp://127.0.0.1:1?starttls=off")})
	if err := routed.SetRouting(relayRouting(t, "mx")); err == nil {
		t.Error("an mx route without a resolver was taken")
	}
	if err := routed.SetRouting(nil); err == nil {
		t.Error("nil routing was taken")
	}
}
