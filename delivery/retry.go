package delivery

import (
	"math/rand/v2"
	"time"
)

// RetryPolicy is the schedule of attempts after a temporary failure. The
// defaults follow Postfix: first retry after 5 minutes, doubling, capped at
// about 67 minutes; the message lifetime (120h) is set when it is enqueued.
type RetryPolicy struct {
	// Initial is the delay after the first failed attempt.
	Initial time.Duration
	// Max caps the delay between attempts.
	Max time.Duration
	// Jitter spreads retries by ± this fraction of the delay so a burst of
	// failures does not retry as a burst (default 0.1; negative disables).
	Jitter float64
}

// DefaultRetryPolicy is Postfix's schedule.
var DefaultRetryPolicy = RetryPolicy{Initial: 5 * time.Minute, Max: 67 * time.Minute, Jitter: 0.1}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.Initial <= 0 {
		p.Initial = DefaultRetryPolicy.Initial
	}
	if p.Max <= 0 {
		p.Max = DefaultRetryPolicy.Max
	}
	if p.Max < p.Initial {
		p.Max = p.Initial
	}
	if p.Jitter == 0 {
		p.Jitter = DefaultRetryPolicy.Jitter
	}
	return p
}

// Delay returns how long to wait after the given number of attempts (1 for
// the first) before the next one: Initial doubled per attempt, capped at
// Max, then jittered.
func (p RetryPolicy) Delay(attempts int) time.Duration {
	p = p.withDefaults()
	d := p.Initial
	for i := 1; i < attempts && d < p.Max; i++ {
		d *= 2
	}
	d = min(d, p.Max)
	if p.Jitter > 0 {
		f := 1 + p.Jitter*(2*rand.Float64()-1)
		d = time.Duration(float64(d) * f)
	}
	return d
}
