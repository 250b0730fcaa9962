package delivery

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/outbox-mail/outbox/queue"
)

// errStopping marks an attempt cut short by shutdown.
var errStopping = errors.New("delivery: shutting down")

func stopped(cause error) error { return fmt.Errorf("%w (%v)", errStopping, cause) }

// recipientNote is what the log line and the outcome hook say about one
// recipient besides its result: where it went and who answered.
type recipientNote struct {
	route, dest  string
	server, addr string
}

// attempt makes one attempt at a claimed message: routes every
// recipient, sends each destination's share as a part of its own, waits
// for them all and merges their outcomes into one result. unsent reports
// that shutdown stopped every part before it started: there is no
// result, and the message's lease is to be released.
func (d *Deliverer) attempt(ctx context.Context, c *queue.Claimed, body []byte) (f finished, unsent bool) {
	started := time.Now()
	parts, out, notes := d.plan(ctx, c, body)
	immediate := len(out.Recipients) // decided by routing, without a session
	for _, p := range parts {
		d.sched.submit(p)
	}
	for _, p := range parts {
		select {
		case <-p.done:
		case <-ctx.Done():
			if !d.sched.cancel(p, Outcome{Err: stopped(ctx.Err())}) {
				<-p.done // running: its ctx is cancelled too
			}
		}
	}
	var routes, hosts []string
	stoppedParts, anyStarted := 0, false
	for _, p := range parts {
		anyStarted = anyStarted || p.started
		if errors.Is(p.out.Err, errStopping) {
			stoppedParts++
		}
		merge(&out, p, len(parts) > 1)
		for _, r := range p.env.Recipients {
			notes[r] = recipientNote{route: p.dest.route, dest: p.dest.name, server: p.out.Server, addr: p.out.ServerAddr}
		}
		routes = append(routes, p.dest.name)
		if p.out.Server != "" {
			hosts = append(hosts, p.out.Server+"["+p.out.ServerAddr+"]")
		}
	}
	if len(routes) == 0 {
		routes = append(routes, "dns")
	}
	if immediate == 0 && len(parts) > 0 && !anyStarted && stoppedParts == len(parts) {
		return finished{}, true
	}
	sent := 0
	for _, p := range parts {
		if p.started {
			sent++
		}
	}
	finishedAt := time.Now()
	res := classify(c, out, d.cfg.Retry, finishedAt, ctx.Err() != nil || stoppedParts > 0)
	res.Attempt = queue.Attempt{Number: c.Attempts, StartedAt: started, FinishedAt: finishedAt,
		Route: strings.Join(routes, ", "), Host: strings.Join(hosts, ", "), Reply: summary(out),
		Transcript: out.Transcript}
	if out.Err != nil {
		res.Attempt.Error = out.Err.Error()
	}
	if d.cfg.Events != nil {
		res.Events = d.cfg.Events(c, &res)
	}
	return finished{claimed: c, result: res, notes: notes, sent: sent}, false
}

// summary is the attempt's reply in one line, kept even when its
// transcript is not: the first reply a server gave, else the error that
// ended the attempt.
func summary(out Outcome) string {
	for _, r := range out.Recipients {
		if r.Code != 0 {
			return describe(r.Reply)
		}
	}
	if out.Err != nil {
		return out.Err.Error()
	}
	return ""
}

// merge adds one part's outcome to the message's. A recipient the part
// has no reply for gets the part's own error as its text, so a failure
// at one destination never explains another's recipients.
func merge(out *Outcome, p *part, several bool) {
	got := make(map[string]bool, len(p.out.Recipients))
	for _, r := range p.out.Recipients {
		got[r.Address] = true
		out.Recipients = append(out.Recipients, r)
	}
	for _, a := range p.env.Recipients {
		if !got[a] {
			out.Recipients = append(out.Recipients, RecipientReply{Address: a, Reply: Reply{Text: noReplyText(p.out.Err)}})
		}
	}
	if p.out.Err != nil {
		e := p.out.Err
		if several {
			e = fmt.Errorf("%s: %w", p.dest.name, e)
		}
		out.Err = errors.Join(out.Err, e)
	}
	if p.out.Transcript != "" {
		if several {
			out.Transcript += "[" + p.dest.name + "]\n"
		}
		out.Transcript += p.out.Transcript
	}
	if p.out.RetryAfter.After(out.RetryAfter) {
		out.RetryAfter = p.out.RetryAfter
	}
}

// plan routes c's recipients: a part per destination, and at once a
// reply for each recipient that cannot be routed (null MX, no such
// domain, a DNS failure).
func (d *Deliverer) plan(ctx context.Context, c *queue.Claimed, body []byte) ([]*part, Outcome, map[string]recipientNote) {
	var out Outcome
	notes := make(map[string]recipientNote, len(c.Recipients))
	byDest := map[*destination]*part{}
	var parts []*part
	dv := d.dv.Load() // one message, one set of keys, whatever SetDKIM does meanwhile
	for _, r := range c.Recipients {
		dest, rt, reply := d.dirs.lookup(ctx, r.Address)
		if dest == nil {
			out.Recipients = append(out.Recipients, RecipientReply{Address: r.Address, Reply: reply})
			notes[r.Address] = recipientNote{route: rt, dest: "dns"}
			continue
		}
		p := byDest[dest]
		if p == nil {
			p = &part{ctx: ctx, store: d.cfg.Store, c: c, body: body, dest: dest, env: envelopeOf(c),
				dv: dv, log: d.log, done: make(chan struct{})}
			byDest[dest] = p
			parts = append(parts, p)
		}
		p.env.Recipients = append(p.env.Recipients, r.Address)
		p.idx = append(p.idx, r.Idx)
		p.env.UTF8 = p.env.UTF8 || !isASCII(r.Address)
		p.env.addDSN(len(p.env.Recipients)-1, r.DSN)
	}
	return parts, out, notes
}

// addDSN gives recipient i of env its RFC 3461 NOTIFY and ORCPT, growing
// the per-recipient lists only as far as a recipient asks for something.
func (env *Envelope) addDSN(i int, dsn queue.RecipientDSN) {
	if len(dsn.Notify) > 0 {
		env.Notify = append(env.Notify, make([][]string, i+1-len(env.Notify))...)
		env.Notify[i] = dsn.Notify
	}
	if dsn.ORcpt != "" {
		env.ORcpt = append(env.ORcpt, make([]string, i+1-len(env.ORcpt))...)
		env.ORcpt[i] = dsn.ORcpt
	}
}

// envelopeOf is c's envelope without recipients, from its typed flags.
func envelopeOf(c *queue.Claimed) Envelope {
	return Envelope{MessageID: c.ID, From: c.From, Size: c.Size,
		EightBit: c.EightBit, UTF8: c.SMTPUTF8 || !isASCII(c.From),
		DSNReturn: string(c.DSN.Return), EnvID: c.DSN.EnvID}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
