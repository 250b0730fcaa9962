package delivery

import (
	"errors"
	"reflect"

	"github.com/outbox-mail/outbox/dkim"
	"github.com/outbox-mail/outbox/route"
	"github.com/outbox-mail/outbox/smtp"
)

// SetRouting puts new routing in force while the Deliverer runs (a
// daemon's configuration reload). Recipients looked up from then on take
// the new routes; mail already given to a destination finishes there, so
// nothing under way is dropped. Destinations of routes that did not
// change keep their connections, limits and health; the others are
// retired and closed once their sessions end. On an error nothing
// changes.
//
// A Deliverer made without Routing (one Transport for everything) cannot
// take routing later.
func (d *Deliverer) SetRouting(r *Routing) error {
	if r == nil {
		return errors.New("delivery: SetRouting needs a Routing")
	}
	if d.dirs.fixed != nil {
		return errors.New("delivery: this Deliverer was made with a Transport, not Routing; it cannot take routing")
	}
	r, err := checkRouting(r)
	if err != nil {
		return err
	}
	d.dirs.setRouting(r)
	return nil
}

// SetDKIM replaces the DKIM signer while the Deliverer runs (a daemon's
// configuration reload); nil stops signing. Messages routed from then on
// are signed with the new keys; a message already under way finishes
// with those it started with. The other deliverability settings stay.
func (d *Deliverer) SetDKIM(s *dkim.Signer) {
	dv := *d.dv.Load()
	dv.DKIM = s
	d.dv.Store(&dv)
}

// setRouting swaps the routing and retires the destinations it changes.
func (dir *directory) setRouting(r *Routing) {
	dir.mu.Lock()
	defer dir.mu.Unlock()
	old := dir.routing.Swap(r)
	keep := unchangedDomains(old, r)
	for key, d := range dir.byKey {
		if keep[keyDomain(key)] {
			continue
		}
		delete(dir.byKey, key)
		dir.retired[d] = true
	}
	dir.closeRetiredLocked()
}

// closeRetiredLocked closes the retired destinations that are idle.
func (dir *directory) closeRetiredLocked() {
	for d := range dir.retired {
		if !dir.sched.idle(d) {
			continue
		}
		delete(dir.retired, d)
		if c := dir.made[d]; c != nil {
			c.Close()
			delete(dir.made, d)
		}
	}
}

// keyDomain is the route domain a directory key starts with ("" for the
// default route).
func keyDomain(key string) string {
	for i := 0; i < len(key); i++ {
		if key[i] == '|' {
			return key[:i]
		}
	}
	return key
}

// unchangedDomains returns the route domains ("" for the default route)
// whose destinations may stay: the route is the same in both, and so is
// everything every destination shares (resolver, SMTP options, MX port,
// pool settings).
func unchangedDomains(old, cur *Routing) map[string]bool {
	keep := map[string]bool{}
	if old == nil || old.Resolver != cur.Resolver || old.MXPort != cur.MXPort ||
		!reflect.DeepEqual(old.Pool, cur.Pool) || !sameOptions(old.SMTP, cur.SMTP) {
		return keep
	}
	if sameRoute(old.Table.Default(), cur.Table.Default()) {
		keep[""] = true
	}
	for _, r := range old.Table.Routes() {
		if n := cur.Table.Lookup(r.Domain); n.Domain == r.Domain && sameRoute(r, n) {
			keep[r.Domain] = true
		}
	}
	return keep
}

func sameOptions(a, b *smtp.Options) bool {
	if a == nil || b == nil {
		return a == b
	}
	return reflect.DeepEqual(*a, *b)
}

// sameRoute reports whether two routes send the same way. A relay that
// trusts a CA file never counts as unchanged, so a reload re-reads it.
func sameRoute(a, b *route.Route) bool {
	if a.Domain != b.Domain || a.MaxConnections != b.MaxConnections || a.Rate != b.Rate || a.Target.Kind != b.Target.Kind {
		return false
	}
	ra, rb := a.Target.Relay, b.Target.Relay
	if ra == nil || rb == nil {
		return ra == rb
	}
	if ra.CAFile != "" || rb.CAFile != "" {
		return false
	}
	return reflect.DeepEqual(*ra, *rb)
}
