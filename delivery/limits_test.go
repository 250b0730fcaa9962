package delivery_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/delivery"
	"github.com/outbox-mail/outbox/queue"
)

func TestConcurrencyLimits(t *testing.T) {
	var all gauge // transactions in progress over all hosts
	port, hosts := startHosts(t, &hostOpts{Delay: 15 * time.Millisecond, Txn: &all},
		&hostOpts{Delay: 15 * time.Millisecond, Txn: &all}, &hostOpts{Delay: 15 * time.Millisecond, Txn: &all})
	w := newWorld(t, port)
	for i, h := range hosts {
		w.host(fmt.Sprintf("mx.c%d.test", i), h)
		w.mx(fmt.Sprintf("c%d.test", i), 10, fmt.Sprintf("mx.c%d.test", i))
	}
	st := openStore(t)
	const per = 40
	for i := range per * 3 {
		enqueue(t, st, i, fmt.Sprintf("r%d@c%d.test", i, i%3))
	}
	// c0 has a route of its own with 3 connections; the others take the
	// per-destination default of 2; all together at most 5 deliveries at
	// once (idle pooled connections do not count against the global cap).
	startDeliverer(t, delivery.Config{Store: st, Routing: w.routing(t, mustRoute(t, "c0.test", "mx", 3, "")),
		DestinationConnections: 2, MaxConnections: 5, PollInterval: -1})
	waitSettled(t, st, 60*time.Second)
	for i, want := range []int64{3, 2, 2} {
		if p := hosts[i].active.Peak(); p > want || p < 2 {
			t.Errorf("c%d.test: %d sessions at once; limit %d (and at least 2 expected with %d messages waiting)", i, p, want, per)
		}
		if n := len(hosts[i].Received()); n != per {
			t.Errorf("c%d.test received %d of %d", i, n, per)
		}
	}
	if p := all.Peak(); p > 5 {
		t.Errorf("%d deliveries at once over all destinations; the global cap is 5", p)
	}
}

func TestRateLimitHeld(t *testing.T) {
	port, hosts := startHosts(t, &hostOpts{})
	w := newWorld(t, port)
	w.host("mx.rate.test", hosts[0])
	w.mx("rate.test", 10, "mx.rate.test")
	st := openStore(t)
	const n = 11
	for i := range n {
		enqueue(t, st, i, fmt.Sprintf("r%d@rate.test", i))
	}
	startDeliverer(t, delivery.Config{Store: st, Routing: w.routing(t, mustRoute(t, "rate.test", "mx", 5, "20/s")), PollInterval: -1})
	waitSettled(t, st, 30*time.Second)
	got := hosts[0].Received()
	if len(got) != n {
		t.Fatalf("received %d of %d", len(got), n)
	}
	first, last := got[0].At, got[0].At
	for _, g := range got {
		if g.At.Before(first) {
			first = g.At
		}
		if g.At.After(last) {
			last = g.At
		}
	}
	// 20/s spaces message starts 50ms apart: 11 messages span at least
	// 500ms, less the first one's own session.
	if span := last.Sub(first); span < 400*time.Millisecond {
		t.Errorf("%d messages at 20/s arrived within %v; the rate allows no less than ~500ms", n, span)
	}
}

func TestRetryAtScheduledTime(t *testing.T) {
	var mu sync.Mutex
	tries := map[string]int{}
	port, hosts := startHosts(t, &hostOpts{Rcpt: func(to string) error {
		mu.Lock()
		defer mu.Unlock()
		tries[to]++
		if tries[to] <= 2 {
			return &smtpErr451
		}
		return nil
	}})
	w := newWorld(t, port)
	w.host("mx.later.test", hosts[0])
	w.mx("later.test", 10, "mx.later.test")
	st := openStore(t)
	id := enqueue(t, st, 1, "r@later.test")
	retry := delivery.RetryPolicy{Initial: 150 * time.Millisecond, Max: time.Second, Jitter: 0.1}
	// No poll: only the scheduler's own wake-up for the due time can
	// start the retries.
	startDeliverer(t, delivery.Config{Store: st, Routing: w.routing(t, mustRoute(t, "later.test", "mx", 1, "")),
		Retry: retry, PollInterval: -1})
	waitStatus(t, st, id, queue.StatusDelivered)
	atts, err := st.Attempts(context.Background(), id)
	if err != nil || len(atts) != 3 {
		t.Fatalf("attempts: %d, %v; want 3", len(atts), err)
	}
	for i, base := range []time.Duration{150 * time.Millisecond, 300 * time.Millisecond} {
		gap := atts[i+1].StartedAt.Sub(atts[i].FinishedAt)
		lo := time.Duration(float64(base)*0.9) - 5*time.Millisecond
		if gap < lo {
			t.Errorf("retry %d came %v after attempt %d; scheduled %v ± 10%%, never earlier than %v", i+1, gap, i+1, base, lo)
		}
		if gap > base+2*time.Second {
			t.Errorf("retry %d came %v after attempt %d; scheduled %v: the scheduler did not wake for it", i+1, gap, i+1, base)
		}
	}
}

func TestDSNParametersReachTheServer(t *testing.T) {
	port, hosts := startHosts(t, &hostOpts{})
	w := newWorld(t, port)
	w.host("mx.dsn.test", hosts[0])
	w.mx("dsn.test", 10, "mx.dsn.test")
	st := openStore(t)
	// The request is in the message's typed fields; a user's tags that
	// look like DSN parameters must not reach the server.
	id, err := st.Enqueue(context.Background(), queue.NewMessage{From: "s@app.test", Recipients: []string{"a@dsn.test", "b@dsn.test"},
		Body:  strings.NewReader(rawMessage(1, "a@dsn.test")),
		Flags: queue.Flags{DSN: queue.DSN{Return: queue.DSNReturnHeaders, EnvID: "env 42"}},
		RecipientDSN: []queue.RecipientDSN{{Notify: []string{"FAILURE", "DELAY"}},
			{Notify: []string{"NEVER"}, ORcpt: "orig-b@app.test"}},
		Tags: map[string]string{"dsn_notify": "SUCCESS", "dsn_orcpt:a@dsn.test": "forged@app.test"}})
	if err != nil {
		t.Fatal(err)
	}
	startDeliverer(t, delivery.Config{Store: st, Routing: w.routing(t)})
	waitStatus(t, st, id, queue.StatusDelivered)
	got := hosts[0].Received()
	if len(got) != 1 || len(got[0].Rcpts) != 2 {
		t.Fatalf("received %+v", got)
	}
	g := got[0]
	if string(g.Mail.Return) != "HDRS" || g.Mail.EnvelopeID != "env 42" {
		t.Errorf("MAIL parameters: RET=%q ENVID=%q", g.Mail.Return, g.Mail.EnvelopeID)
	}
	for i, want := range []string{"[FAILURE DELAY]", "[NEVER]"} {
		if got := fmt.Sprint(g.Rcpts[i].Notify); got != want {
			t.Errorf("recipient %d NOTIFY %v, want %v", i, got, want)
		}
	}
	if g.Rcpts[0].OriginalRecipient != "" || g.Rcpts[1].OriginalRecipient != "orig-b@app.test" {
		t.Errorf("ORCPT: %q, %q; want none, then orig-b@app.test", g.Rcpts[0].OriginalRecipient, g.Rcpts[1].OriginalRecipient)
	}
}

func TestSplitPerDestinationOneResult(t *testing.T) {
	port, hosts := startHosts(t, &hostOpts{}, &hostOpts{}, &hostOpts{})
	w := newWorld(t, port)
	w.host("mx.one.test", hosts[0])
	w.host("mx.two.test", hosts[1])
	w.mx("one.test", 10, "mx.one.test")
	w.mx("two.test", 10, "mx.two.test")
	// three.test names the same host as one.test: the same destination.
	w.mx("three.test", 5, "mx.one.test")
	st := openStore(t)
	id := enqueue(t, st, 1, "a@one.test", "b@two.test", "c@three.test", "d@nowhere.test")
	var outcomes []delivery.RecipientOutcome
	done := make(chan struct{}, 4)
	startDeliverer(t, delivery.Config{Store: st, Routing: w.routing(t), OnOutcome: func(o delivery.RecipientOutcome) {
		outcomes = append(outcomes, o)
		done <- struct{}{}
	}})
	waitStatus(t, st, id, queue.StatusPartial)
	for range 4 {
		<-done
	}
	one, two := hosts[0].Received(), hosts[1].Received()
	if len(one) != 1 || strings.Join(one[0].To, ",") != "a@one.test,c@three.test" {
		t.Errorf("mx.one.test received %+v; want one transaction for one.test and three.test", one)
	}
	if len(two) != 1 || strings.Join(two[0].To, ",") != "b@two.test" {
		t.Errorf("mx.two.test received %+v", two)
	}
	atts, _ := st.Attempts(context.Background(), id)
	if len(atts) != 1 || !strings.Contains(atts[0].Route, "mx:mx.one.test") || !strings.Contains(atts[0].Route, "mx:mx.two.test") {
		t.Errorf("attempts %+v; want one, naming both destinations", atts)
	}
	for _, o := range outcomes {
		if o.Route != "mx" {
			t.Errorf("outcome %s has route label %q, want mx", o.Recipient, o.Route)
		}
	}
}

func TestOfferDeliversAsIfClaimed(t *testing.T) {
	sink := startSink(t, smtpsinkOpts())
	st := openStore(t)
	// The store's leased enqueue is not ours: claim the messages ourselves
	// under the deliverer's owner, as that enqueue will have leased them.
	id1 := enqueue(t, st, 1, "a@x.test")
	id2 := enqueue(t, st, 2, "b@x.test")
	claimed, err := st.Claim(context.Background(), "node-a", 10, time.Minute)
	if err != nil || len(claimed) != 2 {
		t.Fatalf("claim: %d, %v", len(claimed), err)
	}
	d := startDeliverer(t, delivery.Config{Store: st, Transport: relayTo(t, sink.Addr()), PollInterval: -1,
		MaxConnections: 2, MaxInFlight: 4, Owner: "node-a"})
	if err := d.Offer(&queue.Claimed{}, nil); !errors.Is(err, delivery.ErrNotReserved) {
		t.Fatalf("Offer without a reservation: %v", err)
	}
	for i := range claimed {
		if !d.Reserve() {
			t.Fatal("Reserve refused with room free")
		}
		var body []byte
		if claimed[i].ID == id2 {
			body = []byte(rawMessage(2, "b@x.test"))
		}
		if err := d.Offer(&claimed[i], body); err != nil {
			t.Fatal(err)
		}
	}
	waitStatus(t, st, id1, queue.StatusDelivered)
	waitStatus(t, st, id2, queue.StatusDelivered)
	if got := countByNumber(sink.Received()); got["1"] != 1 || got["2"] != 1 {
		t.Errorf("sink got %v; want each offered message once", got)
	}
	// Room runs out at MaxInFlight; reservations stop there.
	n := 0
	for d.Reserve() {
		n++
		if n > 10 {
			break
		}
	}
	if n != 4 {
		t.Errorf("%d reservations granted; want MaxInFlight = 4", n)
	}
	for range n {
		d.Unreserve()
	}
	if !d.Reserve() {
		t.Error("Unreserve did not give the room back")
	}
	d.Unreserve()
}
