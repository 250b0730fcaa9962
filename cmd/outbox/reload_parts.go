package main

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"github.com/outbox-mail/outbox/internal/tlsfiles"
	"github.com/outbox-mail/outbox/route"
	"github.com/outbox-mail/outbox/webhook"
)

// prepareRouting reloads the default route, the per-domain routes and the
// settings every destination shares (DNS server, MX port, timeouts). Mail
// already given to a destination finishes on its old route.
func (d *service) prepareRouting(cur, next *serveConfig) (func(), []string, error) {
	// The discarding logger keeps --workers' deprecation from being
	// repeated at every reload.
	rt, err := buildRouting(next, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, nil, err
	}
	old := d.routing
	if rt.engine.Resolver != nil && old.engine.Resolver != nil && rt.dns == old.dns {
		rt.engine.Resolver = old.engine.Resolver // its cache stays warm
	}
	changes := routeChanges(old, rt)
	for _, f := range []string{"dns", "mx-port", "timeout-connect", "timeout-command", "timeout-data-end"} {
		if a, b := cur.flags.Lookup(f).Value.String(), next.flags.Lookup(f).Value.String(); a != b {
			changes = append(changes, fmt.Sprintf("--%s %s → %s", f, orNone(a), orNone(b)))
		}
	}
	if len(changes) == 0 {
		return nil, nil, nil
	}
	return func() {
		if err := d.client.SetRouting(rt.engine); err != nil {
			d.log.Error("reload: routes not changed", "err", err)
			return
		}
		d.routing = rt
		if rt.capture && !old.capture {
			d.log.Warn("NO RELAY CONFIGURED: mail without a --route of its own is captured locally and NOT sent anywhere")
		}
	}, changes, nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// routeChanges describes what differs between two routings, by domain,
// with the targets' names (which never hold credentials).
func routeChanges(old, cur *routing) []string {
	var out []string
	if d := routeDiff(old.engine.Table.Default(), cur.engine.Table.Default()); d != "" {
		out = append(out, "default route "+d)
	}
	before, after := routeMap(old), routeMap(cur)
	for _, dom := range slices.Sorted(maps.Keys(after)) {
		if b, ok := before[dom]; !ok {
			out = append(out, fmt.Sprintf("added %s → %s", dom, after[dom].Name()))
		} else if d := routeDiff(b, after[dom]); d != "" {
			out = append(out, dom+" "+d)
		}
	}
	for _, dom := range slices.Sorted(maps.Keys(before)) {
		if _, ok := after[dom]; !ok {
			out = append(out, "removed "+dom)
		}
	}
	return out
}

func routeMap(r *routing) map[string]*route.Route {
	m := map[string]*route.Route{}
	for _, rt := range r.engine.Table.Routes() {
		m[rt.Domain] = rt
	}
	return m
}

// routeDiff says how route b differs from a, or "" when it does not.
func routeDiff(a, b *route.Route) string {
	switch {
	case a.Name() != b.Name():
		return a.Name() + " → " + b.Name()
	case a.MaxConnections != b.MaxConnections || a.Rate != b.Rate:
		return fmt.Sprintf("%s: max_connections %d → %d, rate %s → %s", b.Name(),
			a.MaxConnections, b.MaxConnections, orNone(a.Rate.String()), orNone(b.Rate.String()))
	case relayIdentity(a) != relayIdentity(b):
		return b.Name() + ": credentials or URL parameters changed"
	}
	return ""
}

// relayIdentity is everything about a route's relay that a reload could
// change, for comparison only: it holds the password and is never shown.
func relayIdentity(r *route.Route) string {
	if r.Target.Relay == nil {
		return ""
	}
	c := *r.Target.Relay
	c.RootCAs = nil // read from CAFile, which is compared
	return fmt.Sprintf("%+v", c)
}

// prepareWebhooks reloads the webhook endpoints.
func (d *service) prepareWebhooks(cur, next *serveConfig) (func(), []string, error) {
	eps := webhookEndpoints(next.webhooks)
	if err := webhook.CheckEndpoints(eps); err != nil {
		return nil, nil, usagef("webhooks: %v", err)
	}
	before := map[string]webhookConfig{}
	for _, w := range cur.webhooks {
		before[w.URL] = w
	}
	var changes []string
	seen := map[string]bool{}
	for _, w := range next.webhooks {
		seen[w.URL] = true
		b, ok := before[w.URL]
		switch {
		case !ok:
			changes = append(changes, "added "+webhook.Redact(w.URL))
		case b.Secret != w.Secret || !slices.Equal(b.Events, w.Events):
			changes = append(changes, "changed (secret or events) "+webhook.Redact(w.URL))
		}
	}
	for _, w := range cur.webhooks {
		if !seen[w.URL] {
			changes = append(changes, "removed "+webhook.Redact(w.URL)+" (its pending events are abandoned)")
		}
	}
	if len(changes) == 0 {
		return nil, nil, nil
	}
	return func() {
		if err := d.hooks.SetEndpoints(eps); err != nil {
			d.log.Error("reload: webhooks not changed", "err", err)
			return
		}
		if !d.hooksStarted && len(eps) > 0 {
			d.hooks.Start()
			d.hooksStarted = true
		}
	}, changes, nil
}

// prepareCertificates reads the operator's certificate files again (as
// a renewal replaces them) and from other paths if the file names others.
// Whether a listener has operator files at all (rather than the
// self-signed certificate, or plain HTTP) changes only at a restart.
func (d *service) prepareCertificates(cur, next *serveConfig) (func(), []string, error) {
	var applies []func()
	var changes []string
	for _, c := range []struct {
		what, flags string
		files       *tlsfiles.Files
		cert, key   string
		in          bool // the listener runs
	}{
		{"SMTP", "--tls-cert/--tls-key", d.hard.smtpCert, next.tlsCert, next.tlsKey, d.smtpServer != nil},
		{"HTTP", "--http-tls-cert/--http-tls-key", d.hard.httpCert, next.hard.httpTLSCert, next.hard.httpTLSKey, true},
	} {
		switch {
		case !c.in:
			continue
		case c.files == nil && c.cert == "":
			continue
		case c.files == nil || c.cert == "":
			changes = append(changes, fmt.Sprintf("%s: %s given or removed; that takes effect at the next start", c.what, c.flags))
			continue
		}
		st, err := c.files.Prepare(c.cert, c.key)
		if err != nil {
			return nil, nil, usagef("%s: %v", c.flags, err)
		}
		// Applied even when unchanged: the file names may be new.
		applies = append(applies, st.Apply)
		if st.Changed() {
			changes = append(changes, fmt.Sprintf("%s certificate replaced, sha256 %s", c.what, st.Fingerprint()))
		}
	}
	if len(applies) == 0 {
		return nil, changes, nil
	}
	return func() {
		for _, a := range applies {
			a()
		}
	}, changes, nil
}

// prepareLogLevel reloads --log-level.
func (d *service) prepareLogLevel(_, next *serveConfig) (func(), []string, error) {
	level, err := parseLevel(next.logLevel)
	if err != nil {
		return nil, nil, err
	}
	if level == d.level.Level() {
		return nil, nil, nil
	}
	return func() { d.level.Set(level) }, []string{strings.ToLower(d.level.Level().String()) + " → " + strings.ToLower(level.String())}, nil
}
