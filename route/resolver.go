package route

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Response codes, as answers carry them.
const (
	rcodeSuccess   = dns.RcodeSuccess
	rcodeNameError = dns.RcodeNameError
)

func rcodeText(rc int) string {
	if s, ok := dns.RcodeToString[rc]; ok {
		return s
	}
	return fmt.Sprintf("rcode %d", rc)
}

// negativeTTL bounds how long a "no such name" or "no such record" answer
// is kept when the zone's SOA does not say.
const negativeTTL = 5 * time.Minute

// ResolverOptions configures a Resolver.
type ResolverOptions struct {
	// Server is the DNS server to ask ("host:port"); empty: the servers
	// of /etc/resolv.conf, in order.
	Server string
	// Timeout bounds one query to one server (default 5s).
	Timeout time.Duration
	// CacheSize bounds the cached answers (default 10000; negative: no
	// cache).
	CacheSize int
}

// CheckServer reports whether server names a DNS server as
// ResolverOptions.Server wants it: HOST:PORT, the port a number.
func CheckServer(server string) error {
	host, port, err := net.SplitHostPort(server)
	if n, perr := strconv.Atoi(port); err != nil || perr != nil || host == "" || n < 1 || n > 65535 {
		return fmt.Errorf("DNS server %q: want HOST:PORT, e.g. 127.0.0.1:53", server)
	}
	return nil
}

// Resolver resolves MX sets and host addresses over DNS, caching answers
// for their TTL. It is safe for concurrent use.
type Resolver struct {
	servers []string
	client  *dns.Client
	tcp     *dns.Client
	cache   *cache
	now     func() time.Time
}

// NewResolver returns a resolver asking o.Server or the system's servers.
func NewResolver(o ResolverOptions) (*Resolver, error) {
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.CacheSize == 0 {
		o.CacheSize = 10000
	}
	r := &Resolver{client: &dns.Client{Net: "udp", Timeout: o.Timeout},
		tcp: &dns.Client{Net: "tcp", Timeout: o.Timeout}, cache: newCache(o.CacheSize), now: time.Now}
	if o.Server != "" {
		if err := CheckServer(o.Server); err != nil {
			return nil, err
		}
		r.servers = []string{o.Server}
		return r, nil
	}
	conf, err := dns.ClientConfigFromFile("/etc/resolv.conf")
	if err != nil || len(conf.Servers) == 0 {
		return nil, fmt.Errorf("no DNS server: /etc/resolv.conf names none (%v); give one with --dns HOST:PORT", err)
	}
	for _, s := range conf.Servers {
		r.servers = append(r.servers, net.JoinHostPort(s, conf.Port))
	}
	return r, nil
}

// answerRecords is a cacheable answer to one question.
type answerRecords struct {
	rcode int
	mx    []MXHost
	addrs []netip.Addr
}

// MX resolves where direct delivery to domain goes (RFC 5321 §5.1): its
// MX hosts, the domain itself when it has none (implicit MX), or an
// *Error: permanent for a null MX (5.1.10), a name that does not exist
// (5.1.2) or a domain without MX or address records (5.4.4); temporary
// when the DNS fails or does not answer (4.4.3).
func (r *Resolver) MX(ctx context.Context, domain string) (*MXSet, error) {
	a, err := r.query(ctx, domain, dns.TypeMX)
	if err != nil {
		return nil, dnsTrouble(domain, err.Error())
	}
	return mxSet(domain, answer{rcode: a.rcode, mx: a.mx}, func() (bool, error) {
		addrs, err := r.Addrs(ctx, domain)
		var re *Error
		if errors.As(err, &re) && re.Permanent {
			return false, nil
		}
		return len(addrs) > 0, err
	})
}

// Addrs returns a host's addresses, IPv6 (AAAA) first then IPv4 (A). A
// host with neither is a permanent *Error; a failed lookup a temporary
// one, unless the other family answered.
func (r *Resolver) Addrs(ctx context.Context, host string) ([]netip.Addr, error) {
	var out []netip.Addr
	var firstErr error
	nx := 0
	for _, qt := range []uint16{dns.TypeAAAA, dns.TypeA} {
		a, err := r.query(ctx, host, qt)
		switch {
		case err != nil:
			firstErr = cmpErr(firstErr, dnsTrouble(host, err.Error()))
		case a.rcode == rcodeNameError:
			nx++
		case a.rcode != rcodeSuccess:
			firstErr = cmpErr(firstErr, dnsTrouble(host, rcodeText(a.rcode)))
		default:
			out = append(out, a.addrs...)
		}
	}
	switch {
	case len(out) > 0:
		return out, nil
	case firstErr != nil:
		return nil, firstErr
	case nx > 0:
		return nil, &Error{Domain: host, Permanent: true, Code: 550, EnhancedCode: "5.1.2",
			Text: "host " + host + " does not exist (NXDOMAIN)"}
	}
	return nil, &Error{Domain: host, Permanent: true, Code: 550, EnhancedCode: "5.4.4",
		Text: "host " + host + " has no address records"}
}

func cmpErr(old, e error) error {
	if old != nil {
		return old
	}
	return e
}

// query asks one question, from the cache when it can.
func (r *Resolver) query(ctx context.Context, name string, qtype uint16) (answerRecords, error) {
	k := cacheKey{name: name, qtype: qtype}
	if a, ok := r.cache.get(k, r.now()); ok {
		return a, nil
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = true
	var lastErr error
	failed := answerRecords{}
	for _, srv := range r.servers {
		resp, err := r.exchange(ctx, m, srv)
		if err != nil {
			lastErr = err
			if ctx.Err() != nil {
				break
			}
			continue
		}
		a, ttl := records(resp, qtype)
		if a.rcode == dns.RcodeServerFailure || a.rcode == dns.RcodeRefused {
			// The next server may know better; if none does, this is
			// the answer (temporary, never cached).
			failed, lastErr = a, nil
			continue
		}
		r.cache.put(k, a, ttl, r.now())
		return a, nil
	}
	if lastErr == nil && failed.rcode != 0 {
		return failed, nil
	}
	if lastErr == nil {
		lastErr = errors.New("no DNS server")
	}
	return answerRecords{}, lastErr
}

// exchange sends m over UDP, again over TCP when the answer was truncated.
func (r *Resolver) exchange(ctx context.Context, m *dns.Msg, srv string) (*dns.Msg, error) {
	resp, _, err := r.client.ExchangeContext(ctx, m, srv)
	if err == nil && resp.Truncated {
		resp, _, err = r.tcp.ExchangeContext(ctx, m, srv)
	}
	if err != nil {
		return nil, err
	}
	if resp.Id != m.Id {
		return nil, errors.New("DNS answer id mismatch")
	}
	return resp, nil
}

// records extracts the answer to qtype from a response, with how long it
// may be cached: the least TTL of its records, or for a negative answer
// the SOA's (RFC 2308).
func records(resp *dns.Msg, qtype uint16) (answerRecords, time.Duration) {
	a := answerRecords{rcode: resp.Rcode}
	ttl := time.Duration(-1)
	least := func(t uint32) {
		if d := time.Duration(t) * time.Second; ttl < 0 || d < ttl {
			ttl = d
		}
	}
	for _, rr := range resp.Answer {
		switch v := rr.(type) {
		case *dns.MX:
			if qtype == dns.TypeMX {
				a.mx = append(a.mx, MXHost{Name: strings.ToLower(strings.TrimSuffix(v.Mx, ".")), Preference: v.Preference})
				least(v.Hdr.Ttl)
			}
		case *dns.A:
			if ip, ok := netip.AddrFromSlice(v.A.To4()); ok && qtype == dns.TypeA {
				a.addrs = append(a.addrs, ip)
				least(v.Hdr.Ttl)
			}
		case *dns.AAAA:
			if ip, ok := netip.AddrFromSlice(v.AAAA); ok && qtype == dns.TypeAAAA && v.AAAA.To4() == nil {
				a.addrs = append(a.addrs, ip)
				least(v.Hdr.Ttl)
			}
		}
	}
	if ttl < 0 {
		ttl = negativeTTL
		for _, rr := range resp.Ns {
			if soa, ok := rr.(*dns.SOA); ok {
				ttl = time.Duration(min(soa.Hdr.Ttl, soa.Minttl)) * time.Second
			}
		}
	}
	if resp.Rcode != rcodeSuccess && resp.Rcode != rcodeNameError {
		ttl = 0
	}
	return a, ttl
}
