package delivery

import (
	"context"
	"time"
	"unicode/utf8"

	"github.com/outbox-mail/outbox/queue"
)

// commitBatch bounds how many results share one store transaction.
const commitBatch = 256

// claim leases up to limit due messages and tracks them for renewal.
func (d *Deliverer) claim(ctx context.Context, limit int) ([]*queue.Claimed, error) {
	claimed, err := d.cfg.Store.Claim(ctx, d.cfg.Owner, limit, d.cfg.Lease)
	if err != nil {
		return nil, err
	}
	out := make([]*queue.Claimed, len(claimed))
	for i := range claimed {
		out[i] = &claimed[i]
		d.track(claimed[i].ID, true)
	}
	return out, nil
}

// deliver makes one attempt at a claimed message and queues its result.
// ctx is cancelled when shutdown runs out of time; the recipients the
// attempt could not finish are then due again at once.
func (d *Deliverer) deliver(ctx context.Context, c *queue.Claimed) {
	started := time.Now()
	out := d.attempt(ctx, c)
	finishedAt := time.Now()
	res := classify(c, out, d.cfg.Retry, finishedAt, ctx.Err() != nil)
	res.Attempt = queue.Attempt{Number: c.Attempts, StartedAt: started, FinishedAt: finishedAt,
		Route: d.cfg.Transport.Route(), Transcript: out.Transcript}
	if out.Err != nil {
		res.Attempt.Error = out.Err.Error()
	}
	if d.cfg.Events != nil {
		res.Events = d.cfg.Events(c, &res)
	}
	// The worker stays busy until its result is committed, so a crash can
	// repeat at most as many deliveries as there are workers.
	f := finished{claimed: c, result: res, committed: make(chan struct{})}
	d.results <- f
	<-f.committed
}

func (d *Deliverer) attempt(ctx context.Context, c *queue.Claimed) Outcome {
	body, err := d.cfg.Store.OpenBody(ctx, c.ID)
	if err != nil {
		return Outcome{Err: err}
	}
	defer body.Close()
	env := Envelope{MessageID: c.ID, From: c.From, Size: c.Size,
		Recipients: make([]string, len(c.Recipients)),
		EightBit:   c.EightBit,
		UTF8:       c.SMTPUTF8 || !isASCII(c.From)}
	for i, r := range c.Recipients {
		env.Recipients[i] = r.Address
		env.UTF8 = env.UTF8 || !isASCII(r.Address)
	}
	return d.cfg.Transport.Deliver(ctx, env, body)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

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
	for i, f := range batch {
		// Untracked, an uncommitted lease lapses and the message is tried
		// again: a possible duplicate, never a loss. Untracking before the
		// worker is released keeps a new claim of the same message (a retry
		// made due at once) from being untracked by this old one.
		d.track(f.claimed.ID, false)
		close(f.committed)
		if err != nil {
			continue
		}
		if errs[i] != nil {
			d.log.Warn("result not recorded", "id", f.claimed.ID, "err", errs[i])
			continue
		}
		d.log.Debug("attempt recorded", "id", f.claimed.ID, "attempt", f.result.Attempt.Number)
		if d.cfg.OnResult != nil {
			d.cfg.OnResult(f.claimed, &batch[i].result)
		}
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
		d.mu.Lock()
		ids := make([]string, 0, len(d.inflight))
		for id := range d.inflight {
			ids = append(ids, id)
		}
		d.mu.Unlock()
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
