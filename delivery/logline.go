package delivery

import (
	"log/slog"
	"time"

	"github.com/outbox-mail/outbox/queue"
)

// RecipientOutcome is one recipient's committed result with where it
// went, for metrics and logs.
type RecipientOutcome struct {
	MessageID string
	Recipient string
	// Route is the route's name ("relay:host:port", "mx", "capture"):
	// a label bounded by the configuration, never a user's tag.
	Route string
	// Destination is the destination taken ("mx:mx1.example.com",
	// "relay:host:port"), or "dns" when resolution decided.
	Destination string
	// Server and ServerAddr name the host that answered, when known.
	Server, ServerAddr string
	Attempt            int
	Status             queue.RecipientStatus
	Code               int
	EnhancedCode       string
	Text               string
	// Delay is the time from acceptance to this outcome.
	Delay time.Duration
	// AttemptDuration is how long the attempt took.
	AttemptDuration time.Duration
}

// report logs each recipient of a committed result and tells OnOutcome.
func (d *Deliverer) report(f *finished) {
	c, r := f.claimed, &f.result
	for _, rr := range r.Recipients {
		n := f.notes[rr.Address]
		o := RecipientOutcome{MessageID: c.ID, Recipient: rr.Address, Route: n.route, Destination: n.dest,
			Server: n.server, ServerAddr: n.addr, Attempt: c.Attempts, Status: rr.Status, Code: rr.Code,
			EnhancedCode: rr.EnhancedCode, Text: rr.Text, AttemptDuration: r.Attempt.FinishedAt.Sub(r.Attempt.StartedAt)}
		if !c.CreatedAt.IsZero() {
			o.Delay = r.Attempt.FinishedAt.Sub(c.CreatedAt)
		}
		d.logOutcome(&o)
		if d.cfg.OnOutcome != nil {
			d.cfg.OnOutcome(o)
		}
	}
}

// logOutcome writes the Postfix-style line of one recipient outcome:
// id, to, route, destination, relay host[ip], delay, attempt, status
// (sent, deferred, bounced) and the reply that decided it.
func (d *Deliverer) logOutcome(o *RecipientOutcome) {
	status := map[queue.RecipientStatus]string{queue.RecipientDelivered: "sent",
		queue.RecipientDeferred: "deferred", queue.RecipientFailed: "bounced"}[o.Status]
	relay := "none"
	if o.Server != "" {
		relay = o.Server
		if o.ServerAddr != "" && o.ServerAddr != o.Server {
			relay += "[" + o.ServerAddr + "]"
		}
	}
	reply := describe(Reply{Code: o.Code, EnhancedCode: o.EnhancedCode, Text: o.Text})
	d.log.LogAttrs(nil, slog.LevelInfo, "status="+status+" ("+reply+")", //nolint:staticcheck // no context to pass
		slog.String("id", o.MessageID), slog.String("to", o.Recipient), slog.String("route", o.Route),
		slog.String("destination", o.Destination), slog.String("relay", relay),
		slog.String("delay", o.Delay.Round(time.Millisecond).String()), slog.Int("attempt", o.Attempt),
		slog.String("status", status))
}
