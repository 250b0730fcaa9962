// Package route decides where each recipient's mail goes: the default
// route (a relay, direct MX delivery, or local capture when nothing is
// configured), per-domain routes, and for direct delivery the domain's MX
// hosts (RFC 5321 §5), resolved through a pluggable DNS resolver whose
// answers are cached for their TTL.
package route

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/outbox-mail/outbox/smtp"
)

// Kind is what a target delivers to.
type Kind int

// Target kinds.
const (
	// Capture keeps mail locally, sending nothing (no relay configured).
	Capture Kind = iota
	// Relay hands mail to one SMTP relay.
	Relay
	// MX delivers to the recipient domain's MX hosts.
	MX
)

// Target is where a route sends mail.
type Target struct {
	Kind Kind
	// Relay is the parsed relay URL when Kind is Relay.
	Relay *smtp.Relay
}

// ParseTarget reads a route target: "mx" or a relay URL
// (smtp://user:pass@host:port, smtps://…). The error quotes no part of a
// URL that might be a password.
func ParseTarget(s string) (Target, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return Target{}, errors.New("empty target (want mx or smtp://host:port)")
	case strings.EqualFold(s, "mx"):
		return Target{Kind: MX}, nil
	}
	r, err := smtp.ParseRelayURL(s)
	if err != nil {
		return Target{}, err
	}
	return Target{Kind: Relay, Relay: r}, nil
}

// Name is the target as it appears in logs, attempts and metrics:
// "relay:host:port", "mx" or "capture". It never holds credentials.
func (t Target) Name() string {
	switch t.Kind {
	case Relay:
		return "relay:" + t.Relay.Addr()
	case MX:
		return "mx"
	}
	return "capture"
}

// Rate is a message rate limit: N messages per Per. The zero Rate is no
// limit.
type Rate struct {
	N   int
	Per time.Duration
}

// IsZero reports whether r sets no limit.
func (r Rate) IsZero() bool { return r.N == 0 }

// Interval is the spacing between messages at this rate, 0 for no limit.
func (r Rate) Interval() time.Duration {
	if r.N <= 0 {
		return 0
	}
	return r.Per / time.Duration(r.N)
}

// String writes the rate as ParseRate reads it, e.g. "10/s".
func (r Rate) String() string {
	if r.IsZero() {
		return ""
	}
	unit := map[time.Duration]string{time.Second: "s", time.Minute: "m", time.Hour: "h"}[r.Per]
	return strconv.Itoa(r.N) + "/" + unit
}

// ParseRate reads a rate such as "10/s", "600/min" or "5000/h"; an empty
// string is no limit.
func ParseRate(s string) (Rate, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Rate{}, nil
	}
	num, unit, ok := strings.Cut(s, "/")
	n, err := strconv.Atoi(strings.TrimSpace(num))
	if !ok || err != nil || n <= 0 || n > 1_000_000 {
		return Rate{}, fmt.Errorf("rate %q: want N/s, N/m or N/h with N from 1 to 1000000 (e.g. 10/s)", s)
	}
	var per time.Duration
	switch strings.ToLower(strings.TrimSpace(unit)) {
	case "s", "sec", "second":
		per = time.Second
	case "m", "min", "minute":
		per = time.Minute
	case "h", "hour":
		per = time.Hour
	default:
		return Rate{}, fmt.Errorf("rate %q: unknown unit %q (want s, m or h)", s, unit)
	}
	return Rate{N: n, Per: per}, nil
}

// Route sends the mail of one recipient domain (or, for the default
// route, of every domain without a route of its own) to a target.
type Route struct {
	// Domain is the recipient domain, lower case, in A-label form for
	// international names; a leading "." (".example.com") matches every
	// subdomain but not the domain itself. Empty for the default route.
	Domain string
	Target Target
	// MaxConnections bounds this route's connections per destination;
	// 0 takes the engine's default.
	MaxConnections int
	// Rate limits the messages sent per destination; zero: no limit.
	Rate Rate
}

// Name is the route as it appears in logs and metrics: its target's name.
func (r *Route) Name() string { return r.Target.Name() }

// ParseRoute reads a --route value: DOMAIN=TARGET, TARGET being "mx" or
// a relay URL.
func ParseRoute(s string) (Route, error) {
	dom, target, ok := strings.Cut(s, "=")
	if !ok {
		return Route{}, errors.New("want DOMAIN=TARGET, e.g. example.com=mx or example.com=smtp://relay:587")
	}
	return NewRoute(dom, target, 0, "")
}

// NewRoute checks and builds a per-domain route, as a config file's
// {"domain", "target", "max_connections", "rate"} gives it.
func NewRoute(domain, target string, maxConns int, rate string) (Route, error) {
	d, err := CanonicalDomain(strings.TrimPrefix(strings.TrimSpace(domain), "."))
	if err != nil {
		return Route{}, fmt.Errorf("route domain: %w", err)
	}
	if strings.HasPrefix(strings.TrimSpace(domain), ".") {
		d = "." + d
	}
	t, err := ParseTarget(target)
	if err != nil {
		return Route{}, fmt.Errorf("route %s: target: %w", d, err)
	}
	if maxConns < 0 || maxConns > 10000 {
		return Route{}, fmt.Errorf("route %s: max_connections %d: want 0 (default) to 10000", d, maxConns)
	}
	rt, err := ParseRate(rate)
	if err != nil {
		return Route{}, fmt.Errorf("route %s: %w", d, err)
	}
	return Route{Domain: d, Target: t, MaxConnections: maxConns, Rate: rt}, nil
}
