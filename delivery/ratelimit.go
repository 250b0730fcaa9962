package delivery

import (
	"time"

	"github.com/outbox-mail/outbox/route"
)

// limiter spaces the sessions of one destination to hold a rate: one
// message per interval, without bursts. The scheduler's lock guards it.
type limiter struct {
	interval time.Duration // 0: no limit
	next     time.Time     // earliest start of the next message
}

func newLimiter(r route.Rate) limiter { return limiter{interval: r.Interval()} }

// wait returns how long until a message may start; 0 means now.
func (l *limiter) wait(now time.Time) time.Duration {
	if l.interval == 0 || !now.Before(l.next) {
		return 0
	}
	return l.next.Sub(now)
}

// take spends the slot of one message starting now.
func (l *limiter) take(now time.Time) {
	if l.interval == 0 {
		return
	}
	if l.next.Before(now) {
		l.next = now
	}
	l.next = l.next.Add(l.interval)
}
