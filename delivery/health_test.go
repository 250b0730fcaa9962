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
	s := newScheduler(3, 100, 0)
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
	s := newScheduler(10, 100, 0)
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
	s := newScheduler(10, 100, 0)
	dir, err := newDirectory(&Config{Transport: Capture{}, DestinationConnections: 2}, s)
	if err != nil {
		t.Fatal(err)
	}
	rt := &route.Route{}
	mk := func() (Transport, string) { return &closingTransport{}, "t" }
	old := dir.get(nil, "old", rt, mk, nil)
	busy := dir.get(nil, "busy", rt, mk, nil)
	fresh := dir.get(nil, "fresh", rt, mk, nil)
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

func TestSchedulerStalledDestinationDefersItsWaitingParts(t *testing.T) {
	s := newScheduler(10, 100, 50*time.Millisecond)
	hung := &blockingTransport{release: make(chan struct{}), out: got250}
	d := &destination{name: "hung", tr: hung, limit: 1, health: health{p: HealthPolicy{}.withDefaults()}}
	first := testPart(d, "a")
	s.submit(first)
	waitUntil(t, func() bool { return hung.count() == 1 })
	waiting := testPart(d, "b")
	s.submit(waiting)
	// b waits behind the hung session until the stall is declared.
	<-waiting.done
	if hung.count() != 1 || len(waiting.out.Recipients) != 1 || waiting.out.Recipients[0].Code != 0 || waiting.started {
		t.Fatalf("stalled: %d sessions, outcome %+v; want the waiting part deferred unsent", hung.count(), waiting.out)
	}
	late := testPart(d, "c")
	s.submit(late)
	<-late.done // deferred at once while stalled
	if late.started {
		t.Error("a part submitted while stalled was started")
	}
	close(hung.release)
	<-first.done
	// A session ended: no longer stalled, new parts are sent.
	again := testPart(d, "d")
	s.submit(again)
	<-again.done
	if hung.count() != 2 || again.out.Recipients[0].Code != 250 {
		t.Errorf("after the stall cleared: %d sessions, outcome %+v", hung.count(), again.out)
	}
}

func TestSchedulerUncommittedBudget(t *testing.T) {
	s := newScheduler(10, 2, 0)
	tr := &blockingTransport{release: make(chan struct{}), out: got250}
	close(tr.release)
	d := &destination{name: "d", tr: tr, limit: 10, health: health{p: HealthPolicy{}.withDefaults()}}
	var parts []*part
	for i := range 4 {
		p := testPart(d, string(rune('a'+i)))
		parts = append(parts, p)
		s.submit(p)
	}
	<-parts[0].done
	<-parts[1].done
	time.Sleep(20 * time.Millisecond)
	if tr.count() != 2 {
		t.Fatalf("%d parts sent with a budget of 2 uncommitted", tr.count())
	}
	s.release(1) // one result committed: one more may go
	<-parts[2].done
	time.Sleep(20 * time.Millisecond)
	if tr.count() != 3 {
		t.Fatalf("%d parts sent after one commit; want 3", tr.count())
	}
	s.release(2)
	<-parts[3].done
}
