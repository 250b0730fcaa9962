package delivery

import (
	"bytes"
	"context"
	"io"

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
	out   Outcome
	done  chan struct{}
	// started is set by the scheduler when the part gets a slot; read
	// once done is closed.
	started bool
}

// send opens the body (only now, with a connection slot held) and
// delivers the part through its destination's transport.
func (p *part) send() Outcome {
	if err := p.ctx.Err(); err != nil {
		return Outcome{Err: stopped(err)}
	}
	var body io.Reader
	if p.body != nil {
		body = bytes.NewReader(p.body)
	} else {
		rc, err := p.store.OpenBody(p.ctx, p.c.ID)
		if err != nil {
			return Outcome{Err: err}
		}
		defer rc.Close()
		body = rc
	}
	return p.dest.tr.Deliver(p.ctx, p.env, body)
}

// finish records the part's outcome and wakes the message's attempt.
func (p *part) finish(out Outcome) {
	p.out = out
	close(p.done)
}
