package submission

import (
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/outbox-mail/outbox/internal/throttle"
)

// Admission and cut-off settings that are not in Config.
const (
	defaultDataGrace   = 30 * time.Second
	proxyHeaderTimeout = 10 * time.Second
	// evictMinAge spares connections younger than this from eviction: a
	// legitimate client authenticates within it.
	evictMinAge = time.Second
	// refuseTimeout bounds writing the 421 to a refused connection.
	refuseTimeout = time.Second
	// eventLogInterval is how often refusals and cuts are summarised.
	eventLogInterval = 10 * time.Second
)

func limitDefaults(cfg *Config) error {
	if cfg.MaxConnections <= 0 {
		cfg.MaxConnections = DefaultMaxConnections
	}
	if cfg.MaxConnectionsPerIP <= 0 {
		cfg.MaxConnectionsPerIP = DefaultMaxConnectionsPerIP
	}
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = DefaultSessionTimeout
	}
	if cfg.MailTimeout <= 0 {
		cfg.MailTimeout = DefaultMailTimeout
	}
	if cfg.MinDataRate == 0 {
		cfg.MinDataRate = DefaultMinDataRate
	}
	if cfg.dataGrace <= 0 {
		cfg.dataGrace = defaultDataGrace
	}
	if cfg.Throttle == nil {
		cfg.Throttle = throttle.New(throttle.Config{Logger: cfg.Logger})
	}
	return checkSenders(cfg.Users, cfg.Senders)
}

// ipKey is the address a per-client cap counts: the IPv4 address, or the
// IPv6 /64 (one host's usual allocation).
func ipKey(a net.Addr) (netip.Prefix, bool) {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(ta.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ip = ip.Unmap()
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p, true
}

// admit registers a new connection, or answers it "too busy" and closes
// it (returning nil) when the server is full and no connection can be
// evicted, or when its address has too many.
func (s *Server) admit(c net.Conn) *trackedConn {
	tc := newTrackedConn(c, s)
	s.mu.Lock()
	if len(s.conns)-s.evicting >= s.cfg.MaxConnections {
		v := s.oldestEvictable(tc.start)
		if v == nil {
			s.mu.Unlock()
			s.rejected(RejectBusy)
			s.refuse(c, "too busy", "421 4.7.0 Too busy, try again later")
			return nil
		}
		v.evict()
		s.evicting++
		s.events.note("evicted")
	}
	s.conns[tc] = struct{}{}
	s.mu.Unlock()
	if !tc.proxied && !s.admitAddr(tc) {
		tc.release()
		s.rejected(RejectPerIP)
		s.refuse(c, "too many from one address", "421 4.7.0 Too many connections from your address, try again later")
		return nil
	}
	return tc
}

// admitAddr counts tc against its client address's cap.
func (s *Server) admitAddr(tc *trackedConn) bool {
	key, ok := ipKey(tc.RemoteAddr())
	if !ok {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perIP[key] >= s.cfg.MaxConnectionsPerIP {
		return false
	}
	s.perIP[key]++
	tc.ipKey, tc.counted = key, true
	return true
}

// oldestEvictable returns the oldest connection that has not
// authenticated, has not started a transaction and is older than
// evictMinAge, or nil. s.mu is held.
func (s *Server) oldestEvictable(now time.Time) *trackedConn {
	var oldest *trackedConn
	for c := range s.conns {
		if c.evictable(now) && (oldest == nil || c.start.Before(oldest.start)) {
			oldest = c
		}
	}
	return oldest
}

// refuse answers a connection that is not admitted and closes it. The
// socket is fresh, so the short write does not block.
func (s *Server) refuse(c net.Conn, why, reply string) {
	s.events.note("refused: " + why)
	c.SetWriteDeadline(time.Now().Add(refuseTimeout))
	c.Write([]byte(reply + "\r\n"))
	c.Close()
}

// release forgets a closed connection.
func (c *trackedConn) release() {
	s := c.srv
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.conns[c]; !ok {
		return
	}
	delete(s.conns, c)
	if c.evicted {
		s.evicting--
	}
	if c.counted {
		if s.perIP[c.ipKey]--; s.perIP[c.ipKey] <= 0 {
			delete(s.perIP, c.ipKey)
		}
	}
}

// eventLog counts refused, evicted and cut connections and logs them as
// one line per interval rather than one per connection, which a flood
// would turn into a flood of log lines.
type eventLog struct {
	log *slog.Logger

	mu     sync.Mutex
	counts map[string]int
	timer  *time.Timer
}

func newEventLog(l *slog.Logger) *eventLog {
	return &eventLog{log: l, counts: make(map[string]int)}
}

func (e *eventLog) note(what string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.counts[what]++
	if e.timer == nil {
		e.timer = time.AfterFunc(eventLogInterval, e.flush)
	}
}

func (e *eventLog) flush() {
	e.mu.Lock()
	counts := e.counts
	e.counts = make(map[string]int)
	e.timer = nil
	e.mu.Unlock()
	for what, n := range counts {
		e.log.Warn("submission: connections "+what, "count", n, "interval", eventLogInterval)
	}
}

// senderAllowed reports whether from matches one of patterns.
func senderAllowed(from string, patterns []string) bool {
	for _, p := range patterns {
		if globFold(p, from) {
			return true
		}
	}
	return false
}

// globFold matches s against pattern, where * matches any run of
// characters, ignoring ASCII case.
func globFold(pattern, s string) bool {
	pattern, s = strings.ToLower(pattern), strings.ToLower(s)
	star, next := -1, 0 // last * in pattern, and where s resumed after it
	pi, si := 0, 0
	for si < len(s) {
		switch {
		case pi < len(pattern) && pattern[pi] == '*':
			star, next = pi, si
			pi++
		case pi < len(pattern) && pattern[pi] == s[si]:
			pi++
			si++
		case star >= 0:
			next++
			pi, si = star+1, next
		default:
			return false
		}
	}
	for pi < len(pattern) && pattern[pi] == '*' {
		pi++
	}
	return pi == len(pattern)
}
