package delivery

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/route"
	"github.com/outbox-mail/outbox/smtp"
)

var (
	connFail = Outcome{Err: &smtp.ConnError{Stage: "dial", Err: errors.New("connection refused")}}
	got421   = Outcome{Recipients: []RecipientReply{{Address: "a", Reply: Reply{Code: 421, Text: "closing"}}}}
	got250   = Outcome{Recipients: []RecipientReply{{Address: "a", Reply: Reply{Code: 250}}}}
	got550   = Outcome{Recipients: []RecipientReply{{Address: "a", Reply: Reply{Code: 550}}}}
)

func TestHealthCircuit(t *testing.T) {
	h := health{p: HealthPolicy{Threshold: 2, Initial: time.Second, Max: 4 * time.Second}.withDefaults()}
	now := time.Unix(1000, 0)
	if h.observe(&connFail, now) || h.state(now) != closed {
		t.Fatal("one failure opened the circuit; the threshold is 2")
	}
	if h.observe(&got550, now); h.failures != 0 {
		t.Fatal("a 550 is an answer: the destination works")
	}
	h.observe(&connFail, now)
	if !h.observe(&got421, now) || h.state(now) != open || h.until != now.Add(time.Second) {
		t.Fatalf("two failures: state %d until %v", h.state(now), h.until)
	}
	// Sessions begun before the opening do not push it further.
	if h.observe(&connFail, now.Add(time.Millisecond)) || h.until != now.Add(time.Second) {
		t.Fatalf("a late failure moved the circuit to %v", h.until)
	}
	now = now.Add(time.Second)
	if h.state(now) != halfOpen {
		t.Fatal("not half open after the back-off")
	}
	// The probe fails: open again, twice as long; then capped.
	for _, want := range []time.Duration{2 * time.Second, 4 * time.Second, 4 * time.Second} {
		if !h.observe(&connFail, now) || h.until != now.Add(want) {
			t.Fatalf("failed probe: open until +%v, want +%v", h.until.Sub(now), want)
		}
		now = h.until
	}
	h.observe(&got250, now)
	if h.state(now) != closed || h.openings != 0 {
		t.Fatal("a successful probe did not close the circuit")
	}
	// Neutral outcomes (shutdown, a body that would not read) change nothing.
	h.observe(&Outcome{Err: stopped(context.Canceled)}, now)
	h.observe(&Outcome{Err: errors.New("body: disk error")}, now)
	if h.failures != 0 {
		t.Fatal("a neutral outcome counted as a failure")
	}
}

func TestLimiterSpacing(t *testing.T) {
	l := limiter{interval: 100 * time.Millisecond}
	now := time.Unix(0, 0)
	for i := range 5 {
		if w := l.wait(now); w != 0 {
			t.Fatalf("message %d must wait %v at its slot", i, w)
		}
		l.take(now)
		if w := l.wait(now); w != 100*time.Millisecond {
			t.Fatalf("right after a message: wait %v, want 100ms", w)
		}
		now = now.Add(100 * time.Millisecond)
	}
	// Idle time is not saved up as a burst.
	now = now.Add(time.Hour)
	l.take(now)
	if w := l.wait(now); w != 100*time.Millisecond {
		t.Errorf("after an idle hour a second message may start after %v; want 100ms", w)
	}
}

// blockingTransport holds each delivery until released; it stands for a
// destination's sessions so the scheduler's decisions can be watched.
type blockingTransport struct {
	mu      sync.Mutex
	started []string
	release chan struct{}
	out     Outcome
}

func (b *blockingTransport) Route() string { return "test" }
func (b *blockingTransport) Deliver(ctx context.Context, env Envelope, body io.Reader) Outcome {
	b.mu.Lock()
	b.started = append(b.started, env.Recipients[0])
	b.mu.Unlock()
	select {
	case <-b.release:
	case <-ctx.Done():
	}
	return b.out
}
func (b *blockingTransport) count() int { b.mu.Lock(); defer b.mu.Unlock(); return len(b.started) }

func testPart(d *destination, rcpt string) *part {
	return &part{ctx: context.Background(), c: &queue.Claimed{}, body: []byte("x"), dest: d,
		env: Envelope{Recipients: []string{rcpt}}, done: make(chan struct{})}
}

func TestSchedulerLimitsAndTurns(t *testing.T) {
	s := newScheduler(3, 0)
	slow := &blockingTransport{release: make(chan struct{})}
	fast := &blockingTransport{release: make(chan struct{}), out: got250}
	ds := &destination{name: "slow", tr: slow, limit: 2, health: health{p: HealthPolicy{}.withDefaults()}}
	df := &destination{name: "fast", tr: fast, limit: 5, health: health{p: HealthPolicy{}.withDefaults()}}
	var parts []*part
	for i := range 5 {
		p := testPart(ds, "s"+string(rune('0'+i)))
		parts = append(parts, p)
		s.submit(p)
	}
	pf := testPart(df, "f0")
	s.submit(pf)
	waitUntil(t, func() bool { return slow.count() == 2 && fast.count() == 1 })
	// slow is at its own limit of 2; its three waiting parts hold no
	// global slot, so fast got the third.
	s.mu.Lock()
	active, waiting := s.active, len(ds.waiting)
	s.mu.Unlock()
	if active != 3 || waiting != 3 {
		t.Fatalf("active %d waiting %d; want 3 and 3", active, waiting)
	}
	// A waiting part can be taken back (shutdown); a started one cannot.
	if !s.cancel(parts[4], Outcome{Err: stopped(context.Canceled)}) || s.cancel(parts[0], Outcome{}) {
		t.Fatal("cancel took the wrong parts")
	}
	close(fast.release)
	<-pf.done
	close(slow.release)
	for _, p := range parts[:4] {
		<-p.done
	}
	if slow.count() != 4 {
		t.Errorf("slow started %d parts, want 4 (one was cancelled)", slow.count())
	}
}

func TestSchedulerOpenCircuitDefersWithoutSending(t *testing.T) {
	s := newScheduler(10, 0)
	tr := &blockingTransport{release: make(chan struct{}), out: connFail}
	close(tr.release)
	d := &destination{name: "down", tr: tr, limit: 1, health: health{p: HealthPolicy{Threshold: 1, Initial: time.Hour}.withDefaults()}}
	first := testPart(d, "a")
	s.submit(first)
	<-first.done
	second := testPart(d, "b")
	s.submit(second)
	<-second.done
	if tr.count() != 1 {
		t.Fatalf("%d sessions; the open circuit should have kept the second part from the network", tr.count())
	}
	if r := second.out.Recipients; len(r) != 1 || r[0].Code != 0 || second.out.RetryAfter.IsZero() {
		t.Errorf("backed-off outcome %+v; want a deferral with a retry time", second.out)
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for i := 0; !cond(); i++ {
		if i > 2000 {
			t.Fatal("condition never held")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestDirectoryDropsIdleDestinations(t *testing.T) {
	s := newScheduler(10, 0)
	dir, err := newDirectory(&Config{Transport: Capture{}, DestinationConnections: 2}, s)
	if err != nil {
		t.Fatal(err)
	}
	rt := &route.Route{}
	mk := func() (Transport, string) { return &closingTransport{}, "t" }
	old := dir.get("old", rt, mk, nil)
	busy := dir.get("busy", rt, mk, nil)
	fresh := dir.get("fresh", rt, mk, nil)
	long := time.Now().Add(-time.Hour)
	dir.mu.Lock()
	old.looked, busy.looked = long, long
	dir.mu.Unlock()
	s.mu.Lock()
	busy.active = 1
	s.mu.Unlock()
	dir.mu.Lock()
	dir.sweepLocked(time.Now().Add(-idleAfter))
	dir.mu.Unlock()
	if dir.size() != 2 || !old.tr.(*closingTransport).closed || busy.tr.(*closingTransport).closed || fresh.tr.(*closingTransport).closed {
		t.Errorf("after the sweep: %d destinations; want the idle one dropped and closed, the busy and fresh ones kept", dir.size())
	}
}

type closingTransport struct {
	Capture
	closed bool
}

func (c *closingTransport) Close() error { c.closed = true; return nil }
