package delivery

import (
	"context"
	"time"
	"unicode/utf8"

	"github.com/outbox-mail/outbox/queue"
)

// commitBatch bounds how many results share one store transaction.
const commitBatch = 256

// claimLoop claims as many due messages as there are free workers and hands
// each to a worker; with nothing due it sleeps until the next due time, a
// Notify, or the poll interval.
func (d *Deliverer) claimLoop() {
	defer close(d.claimDone)
	for {
		select {
		case <-d.stop:
			return
		case <-d.slots:
		}
		free := 1 + d.takeFreeSlots()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		claimed, err := d.cfg.Store.Claim(ctx, d.cfg.Owner, free, d.cfg.Lease)
		cancel()
		for range free - len(claimed) {
			d.slots <- struct{}{}
		}
		if err != nil {
			d.log.Error("claiming due messages", "err", err)
			d.sleep(time.Second)
			continue
		}
		for i := range claimed {
			c := &claimed[i]
			d.track(c.ID, true)
			d.workers.Add(1)
			go d.deliver(c)
		}
		if len(claimed) < free {
			d.sleep(d.untilNextDue(len(claimed) == 0))
		}
	}
}

func (d *Deliverer) takeFreeSlots() int {
	n := 0
	for {
		select {
		case <-d.slots:
			n++
		default:
			return n
		}
	}
}

// untilNextDue asks the store how long nothing will be due; negative means
// nothing is waiting and there is no poll interval, so only a Notify wakes
// the deliverer. After an empty claim the wait has a small floor, so a
// store whose due time is already past (a lease about to lapse) cannot spin
// the loop.
func (d *Deliverer) untilNextDue(emptyClaim bool) time.Duration {
	wait := d.cfg.PollInterval
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	next, ok, err := d.cfg.Store.NextDue(ctx)
	cancel()
	if err != nil {
		d.log.Error("reading next due time", "err", err)
		return time.Second
	}
	if ok {
		if until := max(time.Until(next), 0); wait < 0 || until < wait {
			wait = until
		}
	}
	if emptyClaim && wait >= 0 && wait < 5*time.Millisecond {
		wait = 5 * time.Millisecond
	}
	return wait
}

// sleep waits for d, a Notify, or shutdown. A negative d waits without a
// timer.
func (d *Deliverer) sleep(wait time.Duration) {
	var timeout <-chan time.Time
	if wait >= 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-d.wake:
	case <-timeout:
	case <-d.stop:
	}
}

// deliver makes one attempt at a claimed message and queues its result.
func (d *Deliverer) deliver(c *queue.Claimed) {
	defer d.workers.Done()
	defer func() { d.slots <- struct{}{} }()
	started := time.Now()
	out := d.attempt(c)
	finishedAt := time.Now()
	res := classify(c, out, d.cfg.Retry, finishedAt, d.sendCtx.Err() != nil)
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

func (d *Deliverer) attempt(c *queue.Claimed) Outcome {
	body, err := d.cfg.Store.OpenBody(d.sendCtx, c.ID)
	if err != nil {
		return Outcome{Err: err}
	}
	defer body.Close()
	env := Envelope{MessageID: c.ID, From: c.From, Size: c.Size,
		Recipients: make([]string, len(c.Recipients)),
		EightBit:   c.Tags["body"] == "8bitmime",
		UTF8:       c.Tags["smtputf8"] == "1" || !isASCII(c.From)}
	for i, r := range c.Recipients {
		env.Recipients[i] = r.Address
		env.UTF8 = env.UTF8 || !isASCII(r.Address)
	}
	return d.cfg.Transport.Deliver(d.sendCtx, env, body)
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
		close(f.committed)
		// Untracked, an uncommitted lease lapses and the message is tried
		// again: a possible duplicate, never a loss.
		d.track(f.claimed.ID, false)
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
