package delivery

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outbox-mail/outbox/route"
	"github.com/outbox-mail/outbox/smtp"
)

// Routing configures how recipients reach destinations: the route table,
// the DNS resolver for MX routes, and the SMTP client settings every
// destination shares.
type Routing struct {
	// Table maps recipient domains to routes (required).
	Table *route.Table
	// Resolver answers MX and address lookups; required when a route is
	// "mx".
	Resolver MXResolver
	// SMTP holds the client options of every destination: LocalName
	// (HELO), Timeouts. A relay's URL adds its TLS mode and credentials;
	// MX hosts get opportunistic STARTTLS without credentials.
	SMTP *smtp.Options
	// MXPort is the port dialled on MX hosts (default 25).
	MXPort int
	// Pool holds the reuse limits of every destination's pool (IdleTimeout,
	// MaxAge, MaxMessages, ProbeAfter); its other fields are set per
	// destination.
	Pool smtp.PoolOptions
}

// directory finds or makes the destination of each recipient. Domains of
// the default MX route whose MX sets name the same hosts share one
// destination; each per-domain route is a destination (or, for "mx", a
// set of them) of its own, with its own limits.
type directory struct {
	routing  atomic.Pointer[Routing] // swapped by SetRouting
	fixed    *destination            // Config.Transport, when there is no Routing
	defLimit int
	health   HealthPolicy

	sched *scheduler

	mu      sync.Mutex
	byKey   map[string]*destination
	made    map[*destination]io.Closer // transports the engine made, closed when dropped or at shutdown
	created int
	// retired are destinations of routes that SetRouting replaced while
	// they had mail under way; each is closed once idle.
	retired map[*destination]bool
}

// Idle destinations are dropped, so a stream of new domains cannot grow
// the directory without bound: every sweepEvery new destinations, those
// unused for idleAfter with nothing in flight and a closed circuit go.
const (
	sweepEvery = 1024
	idleAfter  = 10 * time.Minute
)

func newDirectory(cfg *Config, sched *scheduler) (*directory, error) {
	dir := &directory{defLimit: cfg.DestinationConnections, sched: sched, health: cfg.Health.withDefaults(),
		byKey: map[string]*destination{}, made: map[*destination]io.Closer{}, retired: map[*destination]bool{}}
	if cfg.Routing == nil {
		dir.fixed = dir.newDestination(cfg.Transport.Route(), cfg.Transport.Route(), cfg.Transport, &route.Route{})
		return dir, nil
	}
	r, err := checkRouting(cfg.Routing)
	if err != nil {
		return nil, err
	}
	dir.routing.Store(r)
	return dir, nil
}

// checkRouting checks r and returns a copy with its defaults filled in.
func checkRouting(r *Routing) (*Routing, error) {
	if r.Table == nil {
		return nil, errors.New("delivery: Routing.Table is required")
	}
	if r.Table.Uses(route.MX) && r.Resolver == nil {
		return nil, errors.New("delivery: an mx route needs Routing.Resolver")
	}
	c := *r
	if c.MXPort <= 0 {
		c.MXPort = 25
	}
	return &c, nil
}

func (dir *directory) newDestination(name, routeName string, tr Transport, rt *route.Route) *destination {
	limit := dir.defLimit
	if rt.MaxConnections > 0 {
		limit = rt.MaxConnections
	}
	return &destination{name: name, route: routeName, tr: tr, limit: limit,
		rate: newLimiter(rt.Rate), health: health{p: dir.health}}
}

// lookup returns the destination of recipient addr and its route's name;
// with no destination, reply says why (permanent or temporary).
func (dir *directory) lookup(ctx context.Context, addr string) (*destination, string, Reply) {
	if dir.fixed != nil {
		return dir.fixed, dir.fixed.route, Reply{}
	}
	domain, err := route.Domain(addr)
	if err != nil {
		return nil, "", Reply{Code: 550, EnhancedCode: "5.1.3", Text: "bad recipient address: " + err.Error()}
	}
	rtg := dir.routing.Load()
	rt := rtg.Table.Lookup(domain)
	switch rt.Target.Kind {
	case route.MX:
		set, err := rtg.Resolver.MX(ctx, domain)
		if err != nil {
			return nil, rt.Name(), dnsReply(err)
		}
		return dir.get(rtg, rt.Domain+"|mx|"+set.Key(), rt, func() (Transport, string) {
			po := dir.poolOptions(rtg, rt)
			m := newMXTransport(set, rtg.Resolver, rtg.MXPort, rtg.SMTP, po)
			return m, m.Route()
		}, set), rt.Name(), Reply{}
	case route.Relay:
		return dir.get(rtg, rt.Domain+"|"+rt.Name(), rt, func() (Transport, string) {
			r := NewSMTPRelay(rt.Target.Relay, rtg.SMTP, dir.poolOptions(rtg, rt))
			return r, r.Route()
		}, nil), rt.Name(), Reply{}
	}
	return dir.get(rtg, rt.Domain+"|capture", rt, func() (Transport, string) { return Capture{}, "capture" }, nil), rt.Name(), Reply{}
}

func (dir *directory) poolOptions(rtg *Routing, rt *route.Route) smtp.PoolOptions {
	po := rtg.Pool
	po.MaxConns = dir.defLimit
	if rt.MaxConnections > 0 {
		po.MaxConns = rt.MaxConnections
	}
	po.Addr, po.Options, po.Dial = "", nil, nil
	return po
}

// get returns the destination under key, making it with mk the first
// time. An MX destination keeps the latest set, whose preferences may
// have changed while its host names did not.
func (dir *directory) get(rtg *Routing, key string, rt *route.Route, mk func() (Transport, string), set *route.MXSet) *destination {
	dir.mu.Lock()
	defer dir.mu.Unlock()
	// SetRouting may have run since the lookup read rtg: a destination of
	// the old routing serves this one part, retired from the start.
	stale := rtg != dir.routing.Load()
	now := time.Now()
	if d, ok := dir.byKey[key]; ok && !stale {
		if m, ok := d.tr.(*mxTransport); ok && set != nil {
			m.set.Store(set)
		}
		d.looked = now
		return d
	}
	tr, name := mk()
	d := dir.newDestination(name, rt.Name(), tr, rt)
	d.looked = now
	if c, ok := tr.(io.Closer); ok {
		dir.made[d] = c
	}
	if stale {
		dir.retired[d] = true
		return d
	}
	dir.byKey[key] = d
	if dir.created++; dir.created%sweepEvery == 0 {
		dir.sweepLocked(now.Add(-idleAfter))
	}
	dir.closeRetiredLocked()
	return d
}

// sweepLocked drops the destinations idle since before cutoff.
func (dir *directory) sweepLocked(cutoff time.Time) {
	for key, d := range dir.byKey {
		if d.looked.Before(cutoff) && dir.sched.idle(d) {
			delete(dir.byKey, key)
			if c := dir.made[d]; c != nil {
				c.Close()
				delete(dir.made, d)
			}
		}
	}
}

// all returns every destination.
func (dir *directory) all() []*destination {
	dir.mu.Lock()
	defer dir.mu.Unlock()
	out := make([]*destination, 0, len(dir.byKey)+1)
	if dir.fixed != nil {
		out = append(out, dir.fixed)
	}
	for _, d := range dir.byKey {
		out = append(out, d)
	}
	for d := range dir.retired {
		out = append(out, d)
	}
	return out
}

// size is the number of destinations kept.
func (dir *directory) size() int {
	dir.mu.Lock()
	defer dir.mu.Unlock()
	return len(dir.byKey)
}

// close closes the transports the engine made.
func (dir *directory) close() {
	dir.mu.Lock()
	defer dir.mu.Unlock()
	for d, c := range dir.made {
		c.Close()
		delete(dir.made, d)
	}
}

// dnsReply words a resolution failure as the recipient's reply.
func dnsReply(err error) Reply {
	var re *route.Error
	if errors.As(err, &re) {
		return Reply{Code: re.Code, EnhancedCode: re.EnhancedCode, Text: re.Text, Refused: re.Code >= 500}
	}
	return Reply{Code: 451, EnhancedCode: "4.4.3", Text: "DNS lookup failed: " + err.Error()}
}
