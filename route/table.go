package route

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/net/idna"
)

// Table maps recipient domains to routes: an exact domain route first,
// then the nearest parent's subdomain route (".example.com"), then the
// default. It is read-only once built and safe for concurrent use.
type Table struct {
	def    Route
	routes map[string]*Route
}

// NewTable builds a table from the default route (Domain empty) and the
// per-domain routes; two routes for the same domain are an error.
func NewTable(def Route, routes []Route) (*Table, error) {
	if def.Domain != "" {
		return nil, fmt.Errorf("default route has a domain (%s)", def.Domain)
	}
	t := &Table{def: def, routes: make(map[string]*Route, len(routes))}
	for i := range routes {
		r := routes[i]
		if r.Domain == "" || r.Domain == "." {
			return nil, errors.New("a per-domain route needs a domain")
		}
		if _, dup := t.routes[r.Domain]; dup {
			return nil, fmt.Errorf("two routes for %s", r.Domain)
		}
		t.routes[r.Domain] = &r
	}
	return t, nil
}

// Default returns the default route.
func (t *Table) Default() *Route { return &t.def }

// Routes returns the per-domain routes, in no particular order.
func (t *Table) Routes() []*Route {
	out := make([]*Route, 0, len(t.routes))
	for _, r := range t.routes {
		out = append(out, r)
	}
	return out
}

// Lookup returns the route for a recipient domain (canonical, as
// CanonicalDomain returns it).
func (t *Table) Lookup(domain string) *Route {
	if r, ok := t.routes[domain]; ok {
		return r
	}
	for d := domain; ; {
		i := strings.IndexByte(d, '.')
		if i < 0 {
			break
		}
		if r, ok := t.routes[d[i:]]; ok {
			return r
		}
		d = d[i+1:]
	}
	return &t.def
}

// Uses reports whether any route of the table has the given kind.
func (t *Table) Uses(k Kind) bool {
	if t.def.Target.Kind == k {
		return true
	}
	for _, r := range t.routes {
		if r.Target.Kind == k {
			return true
		}
	}
	return false
}

// Domain returns the canonical domain of a recipient address (what
// follows its last @), or an error naming what is wrong.
func Domain(addr string) (string, error) {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return "", fmt.Errorf("recipient %q has no domain", addr)
	}
	return CanonicalDomain(addr[i+1:])
}

// CanonicalDomain lower-cases a domain, converts an international name to
// its A-label (punycode) form and drops one trailing dot. Address
// literals ([192.0.2.1]) are refused: they have no MX to route by.
func CanonicalDomain(d string) (string, error) {
	d = strings.TrimSuffix(d, ".")
	if d == "" {
		return "", errors.New("empty domain")
	}
	if strings.HasPrefix(d, "[") {
		return "", fmt.Errorf("domain %q: address literals are not routed", d)
	}
	a, err := idna.Lookup.ToASCII(d)
	if err != nil {
		return "", fmt.Errorf("domain %q: %v", d, err)
	}
	if len(a) > 253 {
		return "", fmt.Errorf("domain %q is longer than 253 octets", d)
	}
	return strings.ToLower(a), nil
}
