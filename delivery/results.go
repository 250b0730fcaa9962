package delivery

import (
	"context"
	"time"

	"github.com/outbox-mail/outbox/queue"
)

// commitBatch bounds how many results share one store transaction.
const commitBatch = 256

// commitLoop records results in batches: every result waiting when a
// commit starts shares its transaction.
func (d *Deliverer) commitLoop() {
	defer close(d.commitDone)
	for f := range d.results {
		batch := []finished{f}
	drain:
		for len(batch) < commitBatch {
			select {
			case g, ok := <-d.results:
				if !ok {
					break drain
				}
				batch = append(batch, g)
			default:
				break drain
			}
		}
		d.commit(batch)
	}
}

func (d *Deliverer) commit(batch []finished) {
	results := make([]queue.Result, len(batch))
	for i := range batch {
		results[i] = batch[i].result
	}
	var errs []error
	var err error
	for try := range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		errs, err = d.cfg.Store.Complete(ctx, d.cfg.Owner, results)
		cancel()
		if err == nil {
			break
		}
		d.log.Error("recording delivery results", "messages", len(batch), "try", try+1, "err", err)
		time.Sleep(time.Duration(try+1) * 200 * time.Millisecond)
	}
	var next time.Time
	for i, f := range batch {
		// Untracked, an uncommitted lease lapses and the message is tried
		// again: a possible duplicate, never a loss.
		d.track(f.claimed.ID, false)
		d.sched.release(f.sent)
		if err != nil {
			continue
		}
		if errs[i] != nil {
			d.log.Warn("result not recorded", "id", f.claimed.ID, "err", errs[i])
			continue
		}
		if t := f.result.NextAttemptAt; !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
		d.report(&batch[i])
		if d.cfg.OnResult != nil {
			d.cfg.OnResult(f.claimed, &batch[i].result)
		}
	}
	if !next.IsZero() {
		// The claim loop may be asleep until a later due time: a retry
		// scheduled by these results is due first.
		d.pool.WakeAt(next)
	}
}

// renewLoop extends the leases of messages in flight until the committer
// has finished.
func (d *Deliverer) renewLoop() {
	defer close(d.renewDone)
	t := time.NewTicker(d.cfg.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-d.commitDone:
			return
		case <-t.C:
		}
		ids := d.inflightIDs()
		if len(ids) == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), d.cfg.Lease/3)
		if err := d.cfg.Store.Renew(ctx, d.cfg.Owner, ids, d.cfg.Lease); err != nil {
			d.log.Error("renewing leases", "messages", len(ids), "err", err)
		}
		cancel()
	}
}
