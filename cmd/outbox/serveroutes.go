package main

import (
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/outbox-mail/outbox/delivery"
	"github.com/outbox-mail/outbox/route"
	"github.com/outbox-mail/outbox/smtp"
)

func routingFlagSet(fs *flag.FlagSet, r *routingFlags) {
	fs.Var(&r.routes, "route", "`DOMAIN=TARGET`: send a recipient domain (.DOMAIN: its subdomains) to TARGET, a relay URL or mx (repeatable)")
	fs.StringVar(&r.dns, "dns", "", "DNS server `HOST:PORT` for MX lookups (default: the servers of /etc/resolv.conf)")
	fs.IntVar(&r.mxPort, "mx-port", 25, "`PORT` to connect to on MX hosts")
	durationVar(fs, &r.timeoutConnect, "timeout-connect", 30*time.Second, "TCP connect and TLS handshake timeout")
	durationVar(fs, &r.timeoutCommand, "timeout-command", 5*time.Minute, "timeout for the greeting and each SMTP command's reply")
	durationVar(fs, &r.timeoutDataEnd, "timeout-data-end", 10*time.Minute, "timeout for the reply after the message data (RFC 5321 §4.5.3.2)")
	fs.IntVar(&r.maxConnections, "max-connections", 100, "deliveries in progress at once over all destinations")
	fs.IntVar(&r.destinationConnections, "max-connections-per-destination", 20, "deliveries at once to one destination (a relay or an MX host set); a route's max_connections overrides it")
}

// routing is what 'outbox serve' delivers with: the engine's routing
// (always set, even for capture only, so that a reload can add routes)
// and the limits.
type routing struct {
	engine          *delivery.Routing
	describe        string // the default route, for the start-up line
	capture         bool   // the default route captures mail
	maxConns, perDs int
	dns             string // --dns the resolver asks, for a reload to keep it
}

// buildRouting checks the routing flags and builds the route table, the
// DNS resolver (only when a route is mx) and the SMTP client options
// shared by every destination.
func buildRouting(cfg *serveConfig, log *slog.Logger) (*routing, error) {
	rf := &cfg.routing
	if err := checkRoutingFlags(cfg); err != nil {
		return nil, err
	}
	out := &routing{maxConns: rf.maxConnections, perDs: rf.destinationConnections, dns: rf.dns}
	if cfg.workers > 0 {
		log.Warn("--workers is deprecated: it now sets --max-connections, the deliveries in progress at once", "workers", cfg.workers)
		if !cfg.setFlags["max-connections"] {
			out.maxConns = cfg.workers
		}
	}
	def, err := defaultRoute(cfg.relay)
	if err != nil {
		return nil, err
	}
	routes, err := domainRoutes(rf)
	if err != nil {
		return nil, err
	}
	out.describe = def.Target.Name()
	if def.Target.Kind == route.Relay {
		out.describe = def.Target.Relay.String()
	}
	out.capture = def.Target.Kind == route.Capture
	tab, err := route.NewTable(def, routes)
	if err != nil {
		return nil, usagef("--route: %v", err)
	}
	warnUnverified(log, tab)
	out.engine = &delivery.Routing{Table: tab, MXPort: rf.mxPort, SMTP: &smtp.Options{LocalName: hostname(cfg),
		Timeouts: smtp.Timeouts{Dial: rf.timeoutConnect, Greeting: rf.timeoutCommand, Command: rf.timeoutCommand,
			MailRcpt: rf.timeoutCommand, DataTerm: rf.timeoutDataEnd}}}
	if tab.Uses(route.MX) {
		res, err := route.NewResolver(route.ResolverOptions{Server: rf.dns})
		if err != nil {
			return nil, usagef("--dns: %v", err)
		}
		out.engine.Resolver = res
	}
	return out, nil
}

// warnUnverified says loudly, once at start, which relays are reached
// with tls_verify=false: encrypted, but to whoever answers.
func warnUnverified(log *slog.Logger, tab *route.Table) {
	for _, r := range append([]*route.Route{tab.Default()}, tab.Routes()...) {
		if r.Target.Kind == route.Relay && r.Target.Relay.InsecureSkipVerify {
			log.Warn("TLS CERTIFICATE NOT VERIFIED (tls_verify=false): mail to this relay is encrypted but could go to an impostor; prefer ca=PATH",
				"route", r.Name(), "relay", r.Target.Relay.Addr())
		}
	}
}

func checkRoutingFlags(cfg *serveConfig) error {
	rf := &cfg.routing
	switch {
	case rf.mxPort < 1 || rf.mxPort > 65535:
		return usagef("--mx-port %d: want a port from 1 to 65535", rf.mxPort)
	case rf.timeoutConnect <= 0:
		return usagef("--timeout-connect %v: want a positive duration, e.g. 30s", rf.timeoutConnect)
	case rf.timeoutCommand <= 0:
		return usagef("--timeout-command %v: want a positive duration, e.g. 5m", rf.timeoutCommand)
	case rf.timeoutDataEnd <= 0:
		return usagef("--timeout-data-end %v: want a positive duration, e.g. 10m", rf.timeoutDataEnd)
	case rf.maxConnections < 1 || rf.maxConnections > 100000:
		return usagef("--max-connections %d: want 1 to 100000", rf.maxConnections)
	case rf.destinationConnections < 1 || rf.destinationConnections > 10000:
		return usagef("--max-connections-per-destination %d: want 1 to 10000", rf.destinationConnections)
	case cfg.workers < 0:
		return usagef("--workers %d: want a positive number (or use --max-connections)", cfg.workers)
	}
	if rf.dns != "" {
		if err := route.CheckServer(rf.dns); err != nil {
			return usagef("--dns: %v", err)
		}
	}
	return nil
}

// defaultRoute reads --relay: a relay URL, mx, or nothing (capture).
func defaultRoute(relay string) (route.Route, error) {
	if strings.TrimSpace(relay) == "" {
		return route.Route{Target: route.Target{Kind: route.Capture}}, nil
	}
	t, err := route.ParseTarget(relay)
	if err != nil {
		return route.Route{}, usagef("--relay: %v", err)
	}
	return route.Route{Target: t}, nil
}

// domainRoutes reads --route values and the config file's routes; the
// errors name the route by position and domain, never its URL, which may
// hold a password.
func domainRoutes(rf *routingFlags) ([]route.Route, error) {
	var out []route.Route
	for i, s := range rf.routes {
		r, err := route.ParseRoute(s)
		if err != nil {
			return nil, usagef("--route #%d: %v", i+1, err)
		}
		out = append(out, r)
	}
	for i, c := range rf.fileRoutes {
		r, err := route.NewRoute(c.Domain, c.Target, c.MaxConnections, c.Rate)
		if err != nil {
			return nil, usagef("config routes[%d]: %v", i, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// describeRoutes is the start-up line's account of where mail goes.
func (r *routing) describeRoutes() string {
	n := len(r.engine.Table.Routes())
	if n == 0 {
		return r.describe
	}
	return fmt.Sprintf("%s (+%d domain routes)", r.describe, n)
}
