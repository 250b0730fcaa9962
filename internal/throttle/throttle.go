// Package throttle slows down and then refuses password and token guessing.
// The SMTP submission listener, the API and the dashboard share one
// Throttle, so an address that guesses on one is slowed on all of them.
//
// Failures are counted per client address (an IPv4 address, an IPv6 /64)
// and per network (IPv4 /24, IPv6 /48), with the network's allowance a
// multiple of the address's: one guessing host slows itself long before it
// slows its neighbours. After a few failures each further attempt from the
// address waits its turn in a queue spaced by an exponential, capped delay;
// after many, the address is refused for a while. Failures are also
// counted per user name, but that count only delays the answer to a wrong
// password: a correct password is never delayed by guesses at the same
// user from elsewhere.
//
// Instead of one log line per failure, the Throttle logs one summary line
// per address per interval.
package throttle

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"
)

// Defaults for the zero fields of Config.
const (
	DefaultFreeFailures     = 5
	DefaultBlockAfter       = 20
	DefaultNetworkFactor    = 5
	DefaultUserFreeFailures = 10
	DefaultBaseDelay        = 250 * time.Millisecond
	DefaultMaxDelay         = 10 * time.Second
	DefaultBlockFor         = 15 * time.Minute
	DefaultForget           = 15 * time.Minute
	DefaultLogInterval      = time.Minute
	DefaultMaxEntries       = 100_000
)

// Config tunes a Throttle; zero fields take the defaults above.
type Config struct {
	// FreeFailures is how many failures an address may have before its
	// attempts are delayed.
	FreeFailures int
	// BlockAfter is the failure count at which an address is refused for
	// BlockFor.
	BlockAfter int
	// NetworkFactor multiplies FreeFailures and BlockAfter for the network
	// an address belongs to.
	NetworkFactor int
	// UserFreeFailures is how many failures a user name may have, from any
	// address, before wrong passwords for it are answered late.
	UserFreeFailures int
	// BaseDelay is the first delay; each further failure doubles it, up to
	// MaxDelay.
	BaseDelay, MaxDelay time.Duration
	// BlockFor is how long a refusal lasts.
	BlockFor time.Duration
	// Forget is how long after its last failure a key is forgotten.
	Forget time.Duration
	// LogInterval is how often failures are summarised in the log.
	LogInterval time.Duration
	// MaxEntries bounds the keys kept, so rotating addresses cannot grow
	// memory without end.
	MaxEntries int
	// Logger receives the summaries (default slog.Default()).
	Logger *slog.Logger
}

func (c *Config) defaults() {
	set := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	setD := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	set(&c.FreeFailures, DefaultFreeFailures)
	set(&c.BlockAfter, DefaultBlockAfter)
	set(&c.NetworkFactor, DefaultNetworkFactor)
	set(&c.UserFreeFailures, DefaultUserFreeFailures)
	set(&c.MaxEntries, DefaultMaxEntries)
	setD(&c.BaseDelay, DefaultBaseDelay)
	setD(&c.MaxDelay, DefaultMaxDelay)
	setD(&c.BlockFor, DefaultBlockFor)
	setD(&c.Forget, DefaultForget)
	setD(&c.LogInterval, DefaultLogInterval)
	if c.BlockAfter <= c.FreeFailures {
		c.BlockAfter = c.FreeFailures + 1
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Throttle tracks authentication failures. Its methods are safe for
// concurrent use.
type Throttle struct {
	cfg Config
	now func() time.Time

	mu      sync.Mutex
	keys    map[netip.Prefix]*entry
	users   map[string]*entry
	summary map[netip.Prefix]*summary // per address, since the last log
	flush   *time.Timer
}

// entry is one key's record.
type entry struct {
	failures     int
	pending      int       // admitted attempts not yet reported: counted as failures to come
	last         time.Time // last failure
	next         time.Time // the earliest start of the next attempt
	blockedUntil time.Time
}

// New returns a Throttle for cfg.
func New(cfg Config) *Throttle {
	cfg.defaults()
	return &Throttle{cfg: cfg, now: time.Now, keys: make(map[netip.Prefix]*entry),
		users: make(map[string]*entry), summary: make(map[netip.Prefix]*summary)}
}

// RefusedError is returned for an address refused after too many
// failures; the client may try again after RetryAfter.
type RefusedError struct {
	RetryAfter time.Duration
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("too many failed authentication attempts; try again in %s", e.RetryAfter.Round(time.Second))
}

// keysOf returns the address key and the network key of ip.
func keysOf(ip netip.Addr) (addr, network netip.Prefix) {
	ip = ip.Unmap()
	if ip.Is4() {
		addr, _ = ip.Prefix(32)
		network, _ = ip.Prefix(24)
		return addr, network
	}
	addr, _ = ip.Prefix(64)
	network, _ = ip.Prefix(48)
	return addr, network
}

// Blocked returns how long ip is still refused, or 0. It reserves nothing,
// so it suits a cheap check before credentials are read.
func (t *Throttle) Blocked(ip netip.Addr) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	a, n := keysOf(ip)
	var wait time.Duration
	for _, k := range []netip.Prefix{a, n} {
		if e := t.live(k, now); e != nil && e.blockedUntil.After(now) {
			wait = max(wait, e.blockedUntil.Sub(now))
		}
	}
	if wait > 0 {
		t.note(a, now, func(s *summary) { s.refused++ })
	}
	return wait
}

// Admit reserves ip's next turn to check a credential. It returns how long
// the caller must wait before checking, or a *RefusedError. An address with
// no failures on record waits nothing and costs no memory.
func (t *Throttle) Admit(ip netip.Addr) (time.Duration, error) {
	if d := t.Blocked(ip); d > 0 {
		return 0, &RefusedError{RetryAfter: d}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	a, n := keysOf(ip)
	var wait time.Duration
	for i, k := range []netip.Prefix{a, n} {
		e := t.live(k, now)
		if e == nil {
			continue
		}
		free := t.cfg.FreeFailures
		if i == 1 {
			free *= t.cfg.NetworkFactor
		}
		start := now
		if e.next.After(now) {
			start = e.next
		}
		// Parallel attempts queue behind each other, and one still being
		// checked counts as the failure it will likely be, so concurrency
		// does not multiply the rate.
		e.next = start.Add(t.delay(e.failures+e.pending, free))
		e.pending++
		wait = max(wait, start.Sub(now))
	}
	return wait, nil
}

// Failed records a failed attempt (ending the attempt Admit began) from
// ip at service ("smtp", "api",
// "dashboard": named in the log summary) for user (empty when there is no
// user name, as for tokens) and returns how long to wait before answering
// it: the user name's own count, so that guesses at one user spread over
// many addresses are answered slowly.
func (t *Throttle) Failed(ip netip.Addr, service, user string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	a, n := keysOf(ip)
	t.fail(t.keys, a, now, t.cfg.BlockAfter)
	t.fail(t.keys, n, now, t.cfg.BlockAfter*t.cfg.NetworkFactor)
	t.note(a, now, func(s *summary) { s.failed(service, user) })
	if user == "" {
		return 0
	}
	u := keyUser(user)
	e := t.users[u]
	if e == nil || now.Sub(e.last) > t.cfg.Forget {
		e = &entry{}
		t.insert(func() { t.users[u] = e }, len(t.users), now)
	}
	e.failures++
	e.last = now
	return t.delay(e.failures-1, t.cfg.UserFreeFailures)
}

// fail counts one failure against key k, blocking it at limit.
func (t *Throttle) fail(m map[netip.Prefix]*entry, k netip.Prefix, now time.Time, limit int) {
	e := t.live(k, now)
	if e == nil {
		e = &entry{}
		t.insert(func() { m[k] = e }, len(m), now)
	}
	e.pending = max(0, e.pending-1)
	e.failures++
	e.last = now
	if e.failures >= limit {
		e.blockedUntil = now.Add(t.cfg.BlockFor)
		// When the refusal ends, attempts are still delayed: a few more
		// failures block again.
		e.failures = limit - (limit-t.cfg.FreeFailures)/2
	}
}

// Succeeded records a correct credential (ending the attempt Admit
// began). It does not clear the address's failures: knowing one password
// must not buy more guesses at others.
func (t *Throttle) Succeeded(ip netip.Addr, user string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	a, n := keysOf(ip)
	for _, k := range []netip.Prefix{a, n} {
		if e := t.live(k, now); e != nil {
			e.pending = max(0, e.pending-1)
		}
	}
	if s := t.summary[a]; s != nil {
		s.succeeded++
	}
}

// live returns k's entry unless it has been forgotten.
func (t *Throttle) live(k netip.Prefix, now time.Time) *entry {
	e := t.keys[k]
	if e == nil {
		return nil
	}
	if now.Sub(e.last) > t.cfg.Forget && !e.blockedUntil.After(now) && !e.next.After(now) {
		delete(t.keys, k)
		return nil
	}
	return e
}

// delay is the wait after n failures when free of them cost nothing.
func (t *Throttle) delay(n, free int) time.Duration {
	if n < free {
		return 0
	}
	d := t.cfg.BaseDelay
	for i := free; i < n && d < t.cfg.MaxDelay; i++ {
		d *= 2
	}
	return min(d, t.cfg.MaxDelay)
}

// insert adds an entry, first sweeping forgotten ones when the maps are
// full; if still full, an arbitrary entry makes room.
func (t *Throttle) insert(add func(), size int, now time.Time) {
	if size >= t.cfg.MaxEntries {
		t.sweep(now)
		for len(t.keys)+len(t.users) >= t.cfg.MaxEntries {
			for k := range t.keys {
				delete(t.keys, k)
				break
			}
			for k := range t.users {
				delete(t.users, k)
				break
			}
		}
	}
	add()
}

func (t *Throttle) sweep(now time.Time) {
	for k := range t.keys {
		t.live(k, now)
	}
	for k, e := range t.users {
		if now.Sub(e.last) > t.cfg.Forget {
			delete(t.users, k)
		}
	}
}

// keyUser bounds the length of a user name kept as a key.
func keyUser(u string) string {
	if len(u) > 64 {
		return u[:64]
	}
	return u
}

// Sleep waits d or until ctx is done, returning ctx's error then.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
