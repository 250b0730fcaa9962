package delivery

import (
	"errors"
	"sync"
	"time"
)

// scheduler starts parts on their destinations: at most each
// destination's limit at once, at most max in all, destinations taking
// turns (round robin) for free global slots, each held to its rate and
// its circuit. A destination at its limit keeps its parts waiting without
// holding a global slot, so one that hangs holds only its own
// connections; one whose sessions stop finishing altogether defers its
// waiting parts after stallAfter, so it cannot fill the engine's memory
// either. One goroutine runs per started part, so goroutines are bounded
// by max.
type scheduler struct {
	mu         sync.Mutex
	max        int
	active     int
	budget     int // parts started and not yet committed, at most
	held       int
	ring       []*destination // destinations with parts that may start
	stallAfter time.Duration  // 0: never stalled
	stopping   bool           // shutting down: nothing new starts
	now        func() time.Time
}

func newScheduler(limit, uncommitted int, stallAfter time.Duration) *scheduler {
	return &scheduler{max: limit, budget: max(uncommitted, 1), stallAfter: max(stallAfter, 0), now: time.Now}
}

// release gives back the budget of n parts whose results are committed
// (or given up), so more may start.
func (s *scheduler) release(n int) {
	if n == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.held -= n
	s.dispatchLocked()
}

// submit queues p on its destination, or finishes it at once when the
// destination's circuit is open.
func (s *scheduler) submit(p *part) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := p.dest
	now := s.now()
	d.used = now
	if s.stopping {
		p.finish(Outcome{Err: stopped(errShutdown)})
		return
	}
	if d.health.state(now) == open {
		p.finish(d.backedOff(p))
		return
	}
	if d.stalled {
		p.finish(d.stalledOut(p, s.stallAfter))
		return
	}
	d.waiting = append(d.waiting, p)
	s.wantLocked(d)
	s.dispatchLocked()
	if d.active >= d.limit {
		s.armStall(d)
	}
}

// armStall watches a destination whose slots are all busy: if none of
// its sessions ends within stallAfter of its last progress, it is
// stalled and its waiting parts are deferred.
func (s *scheduler) armStall(d *destination) {
	if s.stallAfter <= 0 || d.stallTimer != nil {
		return
	}
	d.stallTimer = time.AfterFunc(time.Until(d.progress.Add(s.stallAfter)), func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		d.stallTimer = nil
		if d.active < d.limit || len(d.waiting) == 0 {
			return
		}
		if s.now().Sub(d.progress) < s.stallAfter {
			s.armStall(d) // a session ended meanwhile: watch from then
			return
		}
		d.stalled = true
		for p := d.popWaiting(); p != nil; p = d.popWaiting() {
			p.finish(d.stalledOut(p, s.stallAfter))
		}
		d.waiting = nil
	})
}

// cancel takes p off its destination if it has not started, finishing
// it with out; it reports whether it did.
func (s *scheduler) cancel(p *part, out Outcome) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !p.dest.remove(p) {
		return false
	}
	p.finish(out)
	return true
}

// wantLocked puts d in the ring if it has parts waiting.
func (s *scheduler) wantLocked(d *destination) {
	if !d.queued && len(d.waiting) > 0 {
		d.queued = true
		s.ring = append(s.ring, d)
	}
}

// dispatchLocked starts parts while global slots are free and fewer
// than budget deliveries await their commit.
func (s *scheduler) dispatchLocked() {
	for s.active < s.max && s.held < s.budget && len(s.ring) > 0 {
		d := s.ring[0]
		s.ring[0] = nil
		s.ring = s.ring[1:]
		d.queued = false
		if !s.startable(d) {
			continue // back in the ring when a session ends or a timer fires
		}
		p := d.popWaiting()
		p.started = true
		d.rate.take(s.now())
		if d.active == 0 {
			d.progress = s.now()
		}
		d.active++
		s.active++
		s.held++
		go s.run(p)
		s.wantLocked(d)
	}
	if len(s.ring) == 0 {
		s.ring = nil // let the backing array go
	}
}

// startable reports whether d may start a part now, deferring its
// waiting parts when its circuit is open and arming a timer when its
// rate or a coming probe is what holds it.
func (s *scheduler) startable(d *destination) bool {
	now := s.now()
	switch d.health.state(now) {
	case open:
		s.deferWaitingLocked(d)
		return false
	case halfOpen:
		if d.active > 0 {
			return false // one probe at a time
		}
	}
	if d.active >= d.limit || len(d.waiting) == 0 {
		return false
	}
	if w := d.rate.wait(now); w > 0 {
		s.wakeLater(d, w)
		return false
	}
	return true
}

// wakeLater puts d back in the ring after w.
func (s *scheduler) wakeLater(d *destination, w time.Duration) {
	if d.timer != nil {
		return
	}
	d.timer = time.AfterFunc(w, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		d.timer = nil
		s.wantLocked(d)
		s.dispatchLocked()
	})
}

// deferWaitingLocked finishes d's waiting parts as backed off.
func (s *scheduler) deferWaitingLocked(d *destination) {
	for p := d.popWaiting(); p != nil; p = d.popWaiting() {
		p.finish(d.backedOff(p))
	}
	d.waiting = nil
}

// run sends one part and hands its slot on.
func (s *scheduler) run(p *part) {
	out := p.send()
	d := p.dest
	s.mu.Lock()
	d.active--
	s.active--
	d.progress, d.stalled = s.now(), false
	if d.health.observe(&out, s.now()) {
		s.deferWaitingLocked(d)
	}
	s.wantLocked(d)
	s.dispatchLocked()
	s.mu.Unlock()
	p.finish(out)
}

// idle reports whether d has nothing in flight, nothing pending and a
// closed circuit, so the directory may drop it.
func (s *scheduler) idle(d *destination) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return d.active == 0 && len(d.waiting) == 0 && !d.queued && d.timer == nil && d.stallTimer == nil &&
		d.health.state(s.now()) == closed
}

// errShutdown is why parts that never started were not sent.
var errShutdown = errors.New("not started before shutdown")

// stop starts nothing more: the parts waiting on dests finish unsent, so
// shutdown waits only for the sessions already under way.
func (s *scheduler) stop(dests []*destination) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopping = true
	for _, d := range dests {
		for p := d.popWaiting(); p != nil; p = d.popWaiting() {
			p.finish(Outcome{Err: stopped(errShutdown)})
		}
		d.waiting = nil
	}
	s.ring = nil
	for _, d := range dests {
		d.queued = false
	}
}
