package delivery

import (
	"context"
	"log/slog"

	"github.com/outbox-mail/outbox/queue"
)

// part is the share of one message attempt that goes to one destination:
// its recipients there, sent in one transaction.
type part struct {
	ctx   context.Context
	store Store
	c     *queue.Claimed
	body  []byte // the body in memory (an Offer), nil to read it from store
	dest  *destination
	env   Envelope
	idx   []int // the queue index of each of env's recipients
	dv    *Deliverability
	log   *slog.Logger
	out   Outcome
	done  chan struct{}
	// started is set by the scheduler when the part gets a slot; read
	// once done is closed.
	started bool
}

// send opens the body (only now, with a connection slot held) and
// delivers the part through its destination's transport: in one
// transaction, or one per recipient when each gets its own return path or
// unsubscribe link (see Deliverability).
func (p *part) send() Outcome {
	if err := p.ctx.Err(); err != nil {
		return Outcome{Err: stopped(err)}
	}
	if p.dv.perRecipient(p.c) {
		return p.sendPerRecipient()
	}
	return p.deliver(p.env, nil)
}

// finish records the part's outcome and wakes the message's attempt.
func (p *part) finish(out Outcome) {
	p.out = out
	close(p.done)
}
