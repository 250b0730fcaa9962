package delivery

import (
	"errors"
	"fmt"
	"time"
)

// destination is where a group of recipients is sent: a relay, or one
// MX host set. It owns its transport (with its connection pool), a
// concurrency limit, a rate limiter and a circuit breaker. Every field
// below the first block is guarded by the scheduler's lock.
type destination struct {
	name  string // "relay:host:port", "mx:primary.host", "capture"
	route string // the route's name, for metrics: bounded by the config
	tr    Transport
	limit int
	// looked is the directory's last lookup of it, guarded by its lock.
	looked time.Time

	rate    limiter
	health  health
	waiting []*part // FIFO of parts not started
	active  int
	queued  bool        // in the scheduler's runnable ring
	timer   *time.Timer // pending wake-up for the rate limit or a probe
	used    time.Time   // last submit, for dropping idle destinations

	// progress is when a session last ended, or the first began; with
	// every slot busy and none ending for the scheduler's stallAfter,
	// the destination is stalled: its waiting parts are deferred rather
	// than held, until a session ends.
	progress   time.Time
	stalled    bool
	stallTimer *time.Timer
}

// popWaiting takes the oldest part not started.
func (d *destination) popWaiting() *part {
	if len(d.waiting) == 0 {
		return nil
	}
	p := d.waiting[0]
	d.waiting[0] = nil
	d.waiting = d.waiting[1:]
	return p
}

// remove takes p out of the waiting parts; false when it has started.
func (d *destination) remove(p *part) bool {
	for i, w := range d.waiting {
		if w == p {
			d.waiting = append(d.waiting[:i], d.waiting[i+1:]...)
			return true
		}
	}
	return false
}

// notAttempted defers every recipient of p with text, which is also the
// attempt's error.
func notAttempted(p *part, text string) Outcome {
	out := Outcome{Err: errors.New(text), Recipients: make([]RecipientReply, len(p.env.Recipients))}
	for i, r := range p.env.Recipients {
		out.Recipients[i] = RecipientReply{Address: r, Reply: Reply{Text: text}}
	}
	return out
}

// stalledOut is the outcome of a part deferred because d is stalled.
func (d *destination) stalledOut(p *part, after time.Duration) Outcome {
	return notAttempted(p, fmt.Sprintf("not attempted: %s has %d sessions open and none has finished for more than %v",
		d.name, d.active, after))
}

// backedOff is the outcome of a part not attempted because the circuit
// is open: every recipient deferred with the reason, and no retry before
// the circuit allows one.
func (d *destination) backedOff(p *part) Outcome {
	text := fmt.Sprintf("not attempted: %s is backed off until %s after %d failures (last: %s)",
		d.name, d.health.until.UTC().Format(time.RFC3339), d.health.failures, d.health.lastErr)
	out := notAttempted(p, text)
	out.RetryAfter = d.health.until
	return out
}
