package delivery

import (
	"context"
	"errors"
	"time"

	"github.com/outbox-mail/outbox/queue"
)

// Offer's errors.
var (
	// ErrNotReserved: there was no reservation to spend.
	ErrNotReserved = errors.New("delivery: Offer without a reservation")
	// ErrStopped: the deliverer is shutting down; the message's lease was
	// released, so it is due again at once for whoever runs next.
	ErrStopped = errors.New("delivery: deliverer is stopping")
)

// Reserve takes room for one message the caller is about to write
// already leased to this deliverer's Owner (the accepting node's "one
// write per message"): true means the deliverer will take it at once
// with Offer. False means it is full or stopping; write the message
// unleased and let a claim find it. A reservation the caller does not
// spend (its write failed) must be given back with Unreserve.
func (d *Deliverer) Reserve() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.started || d.stopping || !d.pool.TryAcquire() {
		return false
	}
	d.reserved++
	return true
}

// Unreserve gives back a reservation not spent on an Offer.
func (d *Deliverer) Unreserve() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.reserved > 0 {
		d.reserved--
		d.pool.Unacquire()
	}
}

// Offer delivers c, written leased to Owner under a reservation, exactly
// as if this deliverer had claimed it: same routing, limits, retry and
// result. body is the message's stored bytes when the caller still has
// them; nil reads them with OpenBody. It spends one reservation; without
// one it returns ErrNotReserved and the message waits for its lease to
// lapse.
func (d *Deliverer) Offer(c *queue.Claimed, body []byte) error {
	if c == nil {
		return errors.New("delivery: Offer of nil message")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.reserved == 0 {
		return ErrNotReserved
	}
	d.reserved--
	if d.stopping {
		d.pool.Unacquire()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := d.cfg.Store.Release(ctx, d.cfg.Owner, []string{c.ID}); err != nil {
			d.log.Error("releasing an offered message at shutdown", "id", c.ID, "err", err)
		}
		return ErrStopped
	}
	d.inflight[c.ID] = true
	// Under d.mu, so Shutdown either waits for this handler or sees
	// stopping first.
	d.pool.Run(&offered{c: c, body: body})
	return nil
}
