package main

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strings"

	"github.com/outbox-mail/outbox/message/mime7"
	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/route"
	"github.com/outbox-mail/outbox/smtp"
)

// Releasing captured mail from the dashboard (web.Config.Release): the
// stored message, byte for byte, goes to the recipients the user chose
// through one of the relays configured for it: --release-relay URLs, the
// default relay and every --route whose target is a relay URL. A route to
// MX hosts is not offered: a release is one SMTP transaction to one
// server, answered while the user waits.

// releaseFlags are the flags of releasing captured mail.
type releaseFlags struct {
	relays listFlag
}

func (r *releaseFlags) register(fs *flag.FlagSet) {
	fs.Var(&r.relays, "release-relay", "relay `URL` through which the dashboard may release captured mail, after a confirmation (repeatable; routes to relays are offered too)")
}

// releaser sends captured messages on through named relays.
type releaser struct {
	store  queue.Reader
	opts   smtp.Options // EHLO name and timeouts
	names  []string     // in the order offered, the default first
	relays map[string]*smtp.Relay
}

// newReleaser gathers the relays a release may go through; nil when there
// is none, and the dashboard then offers no release.
func newReleaser(cfg *serveConfig, store queue.Reader) (*releaser, error) {
	r := &releaser{store: store, relays: map[string]*smtp.Relay{}, opts: smtp.Options{LocalName: hostname(cfg),
		Timeouts: smtp.Timeouts{Dial: cfg.routing.timeoutConnect, Greeting: cfg.routing.timeoutCommand,
			Command: cfg.routing.timeoutCommand, MailRcpt: cfg.routing.timeoutCommand, DataTerm: cfg.routing.timeoutDataEnd}}}
	for i, u := range cfg.release.relays {
		relay, err := smtp.ParseRelayURL(u)
		if err != nil {
			return nil, usagef("--release-relay #%d: %v", i+1, err)
		}
		r.add("relay:"+relay.Addr(), relay)
	}
	if def, err := defaultRoute(cfg.relay); err == nil && def.Target.Kind == route.Relay {
		r.add(def.Target.Name(), def.Target.Relay)
	}
	routes, err := domainRoutes(&cfg.routing)
	if err != nil {
		return nil, err
	}
	for _, rt := range routes {
		if rt.Target.Kind == route.Relay {
			r.add("route:"+rt.Domain+" ("+rt.Target.Name()+")", rt.Target.Relay)
		}
	}
	if len(r.names) == 0 {
		return nil, nil
	}
	return r, nil
}

func (r *releaser) add(name string, relay *smtp.Relay) {
	if _, ok := r.relays[name]; !ok {
		r.names = append(r.names, name)
		r.relays[name] = relay
	}
}

// release sends message id to rcpts through the relay named name, in one
// SMTP transaction; it fails unless the relay accepted it for every
// recipient. Errors carry the server's replies and never a credential.
func (r *releaser) release(ctx context.Context, id string, rcpts []string, name string) error {
	relay, ok := r.relays[name]
	if !ok {
		return fmt.Errorf("no relay is named %q", name)
	}
	m, err := r.store.Get(ctx, id)
	if err != nil {
		return fmt.Errorf("message %s: %w", id, err)
	}
	body, err := r.store.OpenBody(ctx, id)
	if err != nil {
		return fmt.Errorf("message %s: %w", id, err)
	}
	defer body.Close()
	env := &smtp.Envelope{From: m.From, Recipients: rcpts, Size: m.Size, EightBit: m.EightBit, UTF8: m.SMTPUTF8 || !isASCII(m.From)}
	for _, a := range rcpts {
		env.UTF8 = env.UTF8 || !isASCII(a)
	}
	// A pool of one connection for one message: Pool.Send is what takes a
	// downgrade for a relay without 8BITMIME.
	pool := smtp.NewPool(&smtp.PoolOptions{Addr: relay.Addr(), Options: relay.Options(&r.opts), MaxConns: 1})
	defer pool.Close()
	res, err := pool.Send(ctx, env, body, &smtp.SendOptions{Downgrade: mime7.Downgrade})
	if err != nil {
		return fmt.Errorf("%s: not sent: %w", name, err)
	}
	var refused []string
	for _, rr := range res.Recipients {
		if rr.Err != nil {
			refused = append(refused, rr.Address+": "+rr.Err.Error())
		}
	}
	if len(refused) > 0 {
		return fmt.Errorf("%s: sent to %s; refused %s", name, strings.Join(res.Accepted(), ", "), strings.Join(refused, "; "))
	}
	return nil
}

// routes are the names of the relays, the default first.
func (r *releaser) routes() []string { return slices.Clone(r.names) }
