package delivery_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/outbox-mail/outbox/delivery"
	"github.com/outbox-mail/outbox/internal/logbuf"
	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/queue/sqlite"
)

func TestMXPreferenceOrderAndFallback(t *testing.T) {
	// 127.0.0.2 is down; .3 and .4 answer; .5 greets with 421; .6 answers.
	port, hosts := startHosts(t, nil, &hostOpts{}, &hostOpts{}, &hostOpts{Greet421: true}, &hostOpts{})
	w := newWorld(t, port)
	w.host("mx1.a.test", hosts[0])
	w.host("mx2.a.test", hosts[1])
	w.host("mx3.a.test", hosts[2])
	w.mx("a.test", 30, "mx3.a.test", 10, "mx1.a.test", 20, "mx2.a.test")
	w.host("busy.b.test", hosts[3])
	w.host("ok.b.test", hosts[4])
	w.mx("b.test", 10, "busy.b.test", 20, "ok.b.test")
	st := openStore(t)
	var logs logbuf.Buffer
	var ids []string
	for i := range 5 {
		ids = append(ids, enqueue(t, st, i, fmt.Sprintf("u%d@a.test", i)))
	}
	idB := enqueue(t, st, 9, "u@b.test")
	startDeliverer(t, delivery.Config{Store: st, Routing: w.routing(t), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for _, id := range append(ids, idB) {
		waitStatus(t, st, id, queue.StatusDelivered)
	}
	if n := len(hosts[1].Received()); n != 5 {
		t.Errorf("mx2 (preference 20) received %d of 5; the first host is down, so all go there", n)
	}
	if n := len(hosts[2].Received()); n != 0 {
		t.Errorf("mx3 (preference 30) received %d; it is only for when mx2 fails", n)
	}
	if hosts[3].sessions.Load() == 0 || len(hosts[4].Received()) != 1 {
		t.Errorf("b.test: busy host saw %d connections, fallback host received %d; want a 421 greeting then the next host",
			hosts[3].sessions.Load(), len(hosts[4].Received()))
	}
	m, _ := st.Get(context.Background(), ids[0])
	if m.Attempts != 1 {
		t.Errorf("fallback took %d attempts; it is one attempt walking the hosts", m.Attempts)
	}
	atts, err := st.Attempts(context.Background(), ids[0])
	if err != nil || len(atts) != 1 || atts[0].Route != "mx:mx1.a.test" {
		t.Errorf("attempt route: %+v, %v; want the destination mx:mx1.a.test", atts, err)
	}
	line := fmt.Sprintf("relay=mx2.a.test[%s]", hosts[1].addr)
	waitFor(t, 5*time.Second, "the log line", func() bool { return strings.Contains(logs.String(), line) })
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "to=u0@a.test") {
			for _, want := range []string{"status=sent", "(250 ", "route=mx", "destination=mx:mx1.a.test", "attempt=1", "delay=", "id=" + ids[0]} {
				if !strings.Contains(l, want) {
					t.Errorf("log line lacks %q:\n%s", want, l)
				}
			}
		}
	}
}

func TestImplicitMX(t *testing.T) {
	port, hosts := startHosts(t, &hostOpts{})
	w := newWorld(t, port)
	w.host("implicit.test", hosts[0]) // an A record, no MX
	st := openStore(t)
	id := enqueue(t, st, 1, "ann@implicit.test")
	startDeliverer(t, delivery.Config{Store: st, Routing: w.routing(t)})
	waitStatus(t, st, id, queue.StatusDelivered)
	if got := hosts[0].Received(); len(got) != 1 || got[0].To[0] != "ann@implicit.test" {
		t.Fatalf("implicit MX host received %+v", got)
	}
}

func TestNullMXAndNXDomainFailAtOnce(t *testing.T) {
	port, hosts := startHosts(t, &hostOpts{}, &hostOpts{})
	w := newWorld(t, port)
	// null.test has an address too: a connection there would show.
	w.dns.SetNullMX("null.test")
	w.host("null.test", hosts[0])
	w.host("mx.ok.test", hosts[1])
	w.mx("ok.test", 10, "mx.ok.test")
	st := openStore(t)
	id := enqueue(t, st, 1, "a@null.test", "b@nowhere.test", "c@ok.test")
	startDeliverer(t, delivery.Config{Store: st, Routing: w.routing(t)})
	m := waitStatus(t, st, id, queue.StatusPartial)
	want := map[string]struct {
		status queue.RecipientStatus
		enh    string
	}{"a@null.test": {queue.RecipientFailed, "5.1.10"}, "b@nowhere.test": {queue.RecipientFailed, "5.1.2"},
		"c@ok.test": {queue.RecipientDelivered, ""}}
	for _, r := range m.Recipients {
		w := want[r.Address]
		if r.Status != w.status || (w.enh != "" && r.EnhancedCode != w.enh) || r.Attempts != 1 {
			t.Errorf("%s: %s %d %s %q after %d attempts; want %s %s at once", r.Address, r.Status, r.Code, r.EnhancedCode, r.Text, r.Attempts, w.status, w.enh)
		}
	}
	if n := hosts[0].sessions.Load(); n != 0 {
		t.Errorf("the null MX domain's address got %d connections; want none", n)
	}
	if got := hosts[1].Received(); len(got) != 1 || strings.Join(got[0].To, ",") != "c@ok.test" {
		t.Errorf("ok.test's host received %+v; want only its own recipient", got)
	}
	atts, _ := st.Attempts(context.Background(), id)
	if len(atts) != 1 {
		t.Errorf("%d attempts recorded; one message attempt is one result", len(atts))
	}
}

func TestServFailDefers(t *testing.T) {
	port, hosts := startHosts(t, &hostOpts{})
	w := newWorld(t, port)
	w.host("mx.flaky.test", hosts[0])
	w.mx("flaky.test", 10, "mx.flaky.test")
	w.dns.SetServFail("flaky.test", true)
	st := openStore(t)
	id := enqueue(t, st, 1, "x@flaky.test")
	startDeliverer(t, delivery.Config{Store: st, Routing: w.routing(t),
		Retry: delivery.RetryPolicy{Initial: 200 * time.Millisecond, Max: time.Second, Jitter: -1}})
	m := waitStatus(t, st, id, queue.StatusDeferred)
	if r := m.Recipients[0]; r.Status != queue.RecipientDeferred || r.EnhancedCode != "4.4.3" || !strings.Contains(r.Text, "SERVFAIL") {
		t.Fatalf("SERVFAIL recipient: %+v", r)
	}
	if n := hosts[0].sessions.Load(); n != 0 {
		t.Errorf("%d connections made without an MX answer", n)
	}
	w.dns.SetServFail("flaky.test", false)
	waitStatus(t, st, id, queue.StatusDelivered)
}

func TestHangingDestinationHoldsOnlyItsOwnConnections(t *testing.T) {
	hang := make(chan struct{})
	defer close(hang)
	var all gauge
	port, hosts := startHosts(t, &hostOpts{Hang: hang}, &hostOpts{Active: &all}, &hostOpts{Active: &all}, &hostOpts{Active: &all})
	w := newWorld(t, port)
	w.host("mx.hang.test", hosts[0])
	w.mx("hang.test", 10, "mx.hang.test")
	for i := 1; i <= 3; i++ {
		w.host(fmt.Sprintf("mx.d%d.test", i), hosts[i])
	}
	const others = 300
	for i := range 10 {
		w.mx(fmt.Sprintf("o%d.test", i), 10, fmt.Sprintf("mx.d%d.test", i%3+1))
	}
	st := openStore(t)
	// More mail for the hanging domain than the engine holds in memory
	// (MaxInFlight 64), and claimed first: only the stall rule keeps it
	// from filling the engine.
	var hung []string
	for i := range 100 {
		hung = append(hung, enqueue(t, st, 1000+i, fmt.Sprintf("h%d@hang.test", i)))
	}
	ids := make([]string, others)
	for i := range others {
		ids[i] = enqueue(t, st, i, fmt.Sprintf("r%d@o%d.test", i, i%10))
	}
	routing := w.routing(t, mustRoute(t, "hang.test", "mx", 2, ""))
	// A timeout far beyond the test: only the limits keep mail flowing.
	routing.SMTP.Timeouts.DataTerm = time.Hour
	d, err := delivery.New(delivery.Config{Store: st, Routing: routing, MaxConnections: 8, MaxInFlight: 64,
		StallAfter: 300 * time.Millisecond, PollInterval: -1, Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	d.Start()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		d.Shutdown(ctx)
	}()
	waitFor(t, 60*time.Second, "the other domains' 300 messages", func() bool {
		n := 0
		for _, h := range hosts[1:] {
			n += len(h.Received())
		}
		return n >= others
	})
	if peak := hosts[0].active.Peak(); peak > 2 {
		t.Errorf("the hanging destination held %d connections; its limit is 2", peak)
	}
	if hosts[0].mails.Load() == 0 {
		t.Error("the hanging host was never reached; the test tested nothing")
	}
	for _, id := range ids {
		waitStatus(t, st, id, queue.StatusDelivered)
	}
	stalled := 0
	for _, id := range hung {
		m, _ := st.Get(context.Background(), id)
		if m.Status == queue.StatusDeferred && strings.Contains(m.Recipients[0].Text, "none has finished") {
			stalled++
		}
	}
	if stalled == 0 {
		t.Error("no message for the hanging domain was deferred as stalled")
	}
}

func TestConnectionClosedAfterEachMessage(t *testing.T) {
	port, hosts := startHosts(t, &hostOpts{CloseAfterOne: true})
	w := newWorld(t, port)
	w.host("mx.closer.test", hosts[0])
	w.mx("closer.test", 10, "mx.closer.test")
	st := openStore(t)
	const n = 20
	ids := make([]string, n)
	for i := range ids {
		ids[i] = enqueue(t, st, i, fmt.Sprintf("r%d@closer.test", i))
	}
	startDeliverer(t, delivery.Config{Store: st, Routing: w.routing(t, mustRoute(t, "closer.test", "mx", 1, "")),
		Retry: delivery.RetryPolicy{Initial: time.Hour, Max: time.Hour}})
	for _, id := range ids {
		waitFor(t, 20*time.Second, "an attempt", func() bool {
			m, _ := st.Get(context.Background(), id)
			return m.Status.Final() || m.Status == queue.StatusDeferred
		})
	}
	for _, id := range ids {
		m, _ := st.Get(context.Background(), id)
		if m.Status != queue.StatusDelivered || m.Attempts != 1 {
			t.Errorf("%s: %s after %d attempts (%q); a connection the server closed must be redialled, not reported (needs the smtp client's stale-connection fix)",
				id, m.Status, m.Attempts, m.Recipients[0].Text)
		}
	}
	if got := len(hosts[0].Received()); got != n {
		t.Errorf("server received %d of %d", got, n)
	}
}

func TestCircuitOpensOn421AndOthersFlow(t *testing.T) {
	var refuse sync.Mutex
	refusing := true
	mail421 := func() error {
		refuse.Lock()
		defer refuse.Unlock()
		if refusing {
			return &gosmtp.SMTPError{Code: 421, EnhancedCode: gosmtp.EnhancedCode{4, 3, 2}, Message: "shutting down"}
		}
		return nil
	}
	port, hosts := startHosts(t, &hostOpts{Mail: mail421}, &hostOpts{})
	w := newWorld(t, port)
	w.host("mx.down.test", hosts[0])
	w.mx("down.test", 10, "mx.down.test")
	w.host("mx.up.test", hosts[1])
	w.mx("up.test", 10, "mx.up.test")
	st := openStore(t)
	const n = 10
	var down []string
	for i := range n {
		down = append(down, enqueue(t, st, i, fmt.Sprintf("r%d@down.test", i)))
	}
	var up []string
	for i := range n {
		up = append(up, enqueue(t, st, 100+i, fmt.Sprintf("r%d@up.test", i)))
	}
	startDeliverer(t, delivery.Config{Store: st, Routing: w.routing(t, mustRoute(t, "down.test", "mx", 1, "")),
		Health:       delivery.HealthPolicy{Threshold: 2, Initial: 400 * time.Millisecond, Max: 2 * time.Second},
		Retry:        delivery.RetryPolicy{Initial: 50 * time.Millisecond, Max: 100 * time.Millisecond, Jitter: -1},
		PollInterval: -1})
	for _, id := range up {
		waitStatus(t, st, id, queue.StatusDelivered)
	}
	for _, id := range down {
		waitAttempts(t, st, id, 1)
	}
	backedOff := 0
	for _, id := range down {
		m, _ := st.Get(context.Background(), id)
		if strings.Contains(m.Recipients[0].Text, "backed off") {
			backedOff++
		}
	}
	if mails := hosts[0].mails.Load(); mails > 3 || backedOff == 0 {
		t.Errorf("after the first round: %d MAIL commands reached the refusing host, %d of %d messages deferred as backed off; the circuit opens after 2 and defers the rest without a connection",
			mails, backedOff, n)
	}
	refuse.Lock()
	refusing = false
	refuse.Unlock()
	for _, id := range down {
		waitStatus(t, st, id, queue.StatusDelivered)
	}
}

// TestOpportunisticTLSToMX: an MX host offering STARTTLS with a
// certificate nobody can verify still gets the mail, encrypted (RFC 7435),
// and the client says the --hostname in EHLO.
func TestOpportunisticTLSToMX(t *testing.T) {
	port, hosts := startHosts(t, &hostOpts{TLS: true})
	w := newWorld(t, port)
	w.host("mx.tls.test", hosts[0])
	w.mx("tls.test", 10, "mx.tls.test")
	// A delivered attempt keeps its transcript only when asked to.
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "outbox.db"), sqlite.Options{Queue: queue.Options{Transcripts: queue.TranscriptsAll}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	id := enqueue(t, st, 1, "r@tls.test")
	startDeliverer(t, delivery.Config{Store: st, Routing: w.routing(t)})
	waitStatus(t, st, id, queue.StatusDelivered)
	got := hosts[0].Received()
	if len(got) != 1 || !got[0].TLS {
		t.Fatalf("received %d messages, TLS %v; want one, over STARTTLS", len(got), len(got) == 1 && got[0].TLS)
	}
	atts, _ := st.Attempts(context.Background(), id)
	if len(atts) != 1 || !strings.Contains(atts[0].Transcript, "EHLO outbox.test") || !strings.Contains(atts[0].Transcript, "STARTTLS") {
		t.Errorf("transcript lacks EHLO outbox.test or STARTTLS:\n%s", atts[0].Transcript)
	}
}
