package worker

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// source hands out numbered items, as many as are "due".
type source struct {
	mu     sync.Mutex
	due    int
	next   int
	claims atomic.Int64
}

func (s *source) claim(_ context.Context, limit int) ([]int, error) {
	s.claims.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	n := min(limit, s.due)
	out := make([]int, n)
	for i := range out {
		out[i] = s.next
		s.next++
	}
	s.due -= n
	return out, nil
}

func (s *source) add(n int) {
	s.mu.Lock()
	s.due += n
	s.mu.Unlock()
}

func nothingDue(context.Context) (time.Time, bool, error) { return time.Time{}, false, nil }

func TestWorkersBoundConcurrency(t *testing.T) {
	src := &source{due: 50}
	var running, peak, done atomic.Int64
	p := New(Config[int]{Workers: 3, Claim: src.claim, NextDue: nothingDue, PollInterval: -1,
		Handle: func(ctx context.Context, _ int) {
			n := running.Add(1)
			for {
				old := peak.Load()
				if n <= old || peak.CompareAndSwap(old, n) {
					break
				}
			}
			time.Sleep(2 * time.Millisecond)
			running.Add(-1)
			done.Add(1)
		}})
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for done.Load() < 50 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if done.Load() != 50 || peak.Load() > 3 || peak.Load() < 2 {
		t.Fatalf("handled %d of 50 with peak concurrency %d; want all, at most 3 at once", done.Load(), peak.Load())
	}
}

func TestIdleSleepsUntilNotified(t *testing.T) {
	src := &source{}
	var handled atomic.Int64
	p := New(Config[int]{Workers: 2, Claim: src.claim, NextDue: nothingDue, PollInterval: -1,
		Handle: func(context.Context, int) { handled.Add(1) }})
	p.Start()
	defer p.Shutdown(context.Background())
	time.Sleep(200 * time.Millisecond)
	if n := src.claims.Load(); n > 1 {
		t.Fatalf("idle pool claimed %d times in 200ms", n)
	}
	src.add(1)
	p.Notify()
	deadline := time.Now().Add(5 * time.Second)
	for handled.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if handled.Load() != 1 {
		t.Fatal("Notify did not wake the pool")
	}
}

func TestSleepsUntilNextDue(t *testing.T) {
	src := &source{}
	due := time.Now().Add(100 * time.Millisecond)
	var handled atomic.Int64
	p := New(Config[int]{Workers: 1, Claim: func(ctx context.Context, limit int) ([]int, error) {
		if time.Now().After(due) {
			src.add(1)
			due = due.Add(time.Hour)
		}
		return src.claim(ctx, limit)
	}, NextDue: func(context.Context) (time.Time, bool, error) { return due, true, nil },
		PollInterval: -1, Handle: func(context.Context, int) { handled.Add(1) }})
	p.Start()
	defer p.Shutdown(context.Background())
	deadline := time.Now().Add(5 * time.Second)
	for handled.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if handled.Load() != 1 {
		t.Fatal("the item due in 100ms was never handled")
	}
	if n := src.claims.Load(); n > 4 {
		t.Errorf("%d claims to wait 100ms; the pool should sleep until the due time", n)
	}
}

func TestShutdownCancelsAfterDeadline(t *testing.T) {
	src := &source{due: 1}
	started := make(chan struct{})
	var sawCancel atomic.Bool
	p := New(Config[int]{Workers: 1, Claim: src.claim, NextDue: nothingDue, PollInterval: -1,
		Handle: func(ctx context.Context, _ int) {
			close(started)
			<-ctx.Done()
			sawCancel.Store(true)
		}})
	p.Start()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := p.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want the deadline", err)
	}
	if !sawCancel.Load() {
		t.Fatal("Shutdown returned before the handler saw its context cancelled")
	}
	if n := src.claims.Load(); n != 1 {
		t.Errorf("%d claims; a stopping pool must not claim again", n)
	}
}

func TestClaimErrorBacksOff(t *testing.T) {
	var claims atomic.Int64
	p := New(Config[int]{Workers: 1, PollInterval: -1, NextDue: nothingDue, Handle: func(context.Context, int) {},
		Claim: func(context.Context, int) ([]int, error) {
			claims.Add(1)
			return nil, errors.New("database is down")
		}})
	p.Start()
	time.Sleep(300 * time.Millisecond)
	p.Shutdown(context.Background())
	if n := claims.Load(); n != 1 {
		t.Errorf("%d claims in 300ms after an error; want one, then a 1s back-off", n)
	}
}

// A store whose due time is always in the past but whose claims find
// nothing (its clock is behind ours) must not turn the loop into a poll.
func TestPastDueTimeBacksOff(t *testing.T) {
	src := &source{}
	p := New(Config[int]{Workers: 1, Claim: src.claim, PollInterval: -1, Handle: func(context.Context, int) {},
		NextDue: func(context.Context) (time.Time, bool, error) { return time.Now().Add(-time.Minute), true, nil }})
	p.Start()
	time.Sleep(time.Second)
	p.Shutdown(context.Background())
	// Without back-off: one claim per 5 ms floor, about 200.
	if n := src.claims.Load(); n > 20 {
		t.Errorf("%d claims in a second against a past due time; want a back-off", n)
	}
}

// TestWakeAtCutsASleepShort: a loop sleeping with no poll and nothing due
// wakes at a time told by WakeAt, not before it.
func TestWakeAtCutsASleepShort(t *testing.T) {
	var claims atomic.Int64
	var claimedAt atomic.Int64
	p := New(Config[int]{Workers: 1, PollInterval: -1,
		Claim: func(ctx context.Context, limit int) ([]int, error) {
			claims.Add(1)
			claimedAt.Store(time.Now().UnixNano())
			return nil, nil
		},
		NextDue: func(ctx context.Context) (time.Time, bool, error) { return time.Time{}, false, nil },
		Handle:  func(ctx context.Context, item int) {}})
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(context.Background())
	deadline := time.Now().Add(5 * time.Second)
	for claims.Load() < 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // asleep now, with no timer
	at := time.Now().Add(150 * time.Millisecond)
	p.WakeAt(time.Now().Add(time.Hour)) // a later time changes nothing
	p.WakeAt(at)
	for claims.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if claims.Load() < 2 {
		t.Fatal("WakeAt never woke the loop")
	}
	if got := time.Unix(0, claimedAt.Load()); got.Before(at) {
		t.Errorf("woke %v before the WakeAt time", at.Sub(got))
	}
}
