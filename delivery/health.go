package delivery

import (
	"errors"
	"time"

	"github.com/outbox-mail/outbox/smtp"
)

// HealthPolicy says when a destination is backed off. Consecutive
// connection failures or 421 replies open its circuit: for a while its
// mail is deferred without a connection attempt. When the while is over
// one session probes it; a success closes the circuit, a failure opens it
// again for twice as long, up to Max.
type HealthPolicy struct {
	// Threshold is the number of consecutive failures that opens the
	// circuit (default 3).
	Threshold int
	// Initial is the first back-off (default 30s); Max its ceiling
	// (default 10m).
	Initial, Max time.Duration
}

func (p HealthPolicy) withDefaults() HealthPolicy {
	if p.Threshold <= 0 {
		p.Threshold = 3
	}
	if p.Initial <= 0 {
		p.Initial = 30 * time.Second
	}
	if p.Max < p.Initial {
		p.Max = max(p.Initial, 10*time.Minute)
	}
	return p
}

// circuit states.
const (
	closed = iota
	open
	halfOpen
)

// health is one destination's circuit breaker. It is not safe for
// concurrent use; the scheduler's lock guards it.
type health struct {
	p        HealthPolicy
	failures int       // consecutive failures
	openings int       // consecutive openings without a success
	until    time.Time // open until then; zero when closed
	lastErr  string
}

// state returns the circuit's state at now.
func (h *health) state(now time.Time) int {
	switch {
	case h.until.IsZero():
		return closed
	case now.Before(h.until):
		return open
	}
	return halfOpen
}

// observe records one session's outcome and reports whether it opened
// the circuit. Outcomes that say nothing about the destination (a body
// that could not be read, a shutdown) change nothing.
func (h *health) observe(out *Outcome, now time.Time) (opened bool) {
	switch verdict(out) {
	case good:
		h.failures, h.openings, h.until = 0, 0, time.Time{}
		return false
	case neutral:
		return false
	}
	h.failures++
	h.lastErr = describeFailure(out)
	switch st := h.state(now); {
	case st == open:
		// A session begun before the circuit opened: already counted.
		return false
	case st == closed && h.failures < h.p.Threshold:
		return false
	}
	h.openings++
	d := h.p.Initial
	for i := 1; i < h.openings && d < h.p.Max; i++ {
		d *= 2
	}
	h.until = now.Add(min(d, h.p.Max))
	return true
}

const (
	good = iota
	bad
	neutral
)

// verdict judges a session: a connection failure or a 421 anywhere is
// bad, any other reply from the server good.
func verdict(out *Outcome) int {
	for _, r := range out.Recipients {
		if r.Code == 421 {
			return bad
		}
	}
	var ce *smtp.ConnError
	if errors.As(out.Err, &ce) && !errors.Is(out.Err, errStopping) {
		return bad
	}
	for _, r := range out.Recipients {
		if r.Code != 0 {
			return good
		}
	}
	return neutral
}

func describeFailure(out *Outcome) string {
	for _, r := range out.Recipients {
		if r.Code == 421 {
			return describe(r.Reply)
		}
	}
	if out.Err != nil {
		return out.Err.Error()
	}
	return "no reply"
}
