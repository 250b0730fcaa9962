// Package dnstest runs a real DNS server (github.com/miekg/dns) on a
// loopback port for tests: it serves the MX, A and AAAA records, null MX,
// NXDOMAIN and SERVFAIL answers a test gives it, over UDP and TCP on the
// same port, so a whole "internet" of 127.0.0.x mail hosts can be
// resolved without leaving the machine.
package dnstest

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"
)

// MX is one MX record: a preference and an exchange host name ("." for a
// null MX).
type MX struct {
	Pref uint16
	Host string
}

// Server is a running DNS server on 127.0.0.1. Unknown names get
// NXDOMAIN; a known name without records of the asked type gets an empty
// NOERROR answer (NODATA).
type Server struct {
	udp, tcp *dns.Server
	addr     string
	queries  atomic.Int64

	mu       sync.Mutex
	ttl      uint32
	mx       map[string][]MX
	addrs    map[string][]netip.Addr
	servfail map[string]bool
	silent   map[string]bool
	asked    map[string]int // "name TYPE" → count
}

// Start runs a server on a free loopback port.
func Start() (*Server, error) {
	s := &Server{ttl: 300, mx: map[string][]MX{}, addrs: map[string][]netip.Addr{},
		servfail: map[string]bool{}, silent: map[string]bool{}, asked: map[string]int{}}
	var err error
	for range 20 {
		if err = s.listen(); err == nil {
			return s, nil
		}
	}
	return nil, fmt.Errorf("dnstest: %w", err)
}

// listen binds UDP on a free port, then TCP on the same one.
func (s *Server) listen() error {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		pc.Close()
		return err
	}
	s.addr = pc.LocalAddr().String()
	h := dns.HandlerFunc(s.serve)
	s.udp = &dns.Server{PacketConn: pc, Handler: h}
	s.tcp = &dns.Server{Listener: l, Handler: h}
	started := make(chan struct{}, 2)
	s.udp.NotifyStartedFunc = func() { started <- struct{}{} }
	s.tcp.NotifyStartedFunc = func() { started <- struct{}{} }
	go s.udp.ActivateAndServe() //nolint:errcheck // ends on Close
	go s.tcp.ActivateAndServe() //nolint:errcheck
	<-started
	<-started
	return nil
}

// Addr is the server's host:port, for --dns.
func (s *Server) Addr() string { return s.addr }

// Close stops the server.
func (s *Server) Close() error {
	return errors.Join(s.udp.Shutdown(), s.tcp.Shutdown())
}

// SetTTL sets the TTL of every answer served from now on (default 300).
func (s *Server) SetTTL(ttl uint32) {
	s.mu.Lock()
	s.ttl = ttl
	s.mu.Unlock()
}

// SetMX sets a domain's MX records (replacing any).
func (s *Server) SetMX(domain string, mx ...MX) {
	s.mu.Lock()
	s.mx[key(domain)] = mx
	s.mu.Unlock()
}

// SetNullMX gives a domain the single record "MX 0 ." (RFC 7505).
func (s *Server) SetNullMX(domain string) { s.SetMX(domain, MX{Pref: 0, Host: "."}) }

// SetAddrs sets a host's A and AAAA records from IP literals.
func (s *Server) SetAddrs(host string, ips ...string) {
	var as []netip.Addr
	for _, ip := range ips {
		as = append(as, netip.MustParseAddr(ip))
	}
	s.mu.Lock()
	s.addrs[key(host)] = as
	s.mu.Unlock()
}

// SetServFail makes every question about name answer SERVFAIL.
func (s *Server) SetServFail(name string, on bool) {
	s.mu.Lock()
	s.servfail[key(name)] = on
	s.mu.Unlock()
}

// SetSilent makes the server drop every question about name, so clients
// time out.
func (s *Server) SetSilent(name string, on bool) {
	s.mu.Lock()
	s.silent[key(name)] = on
	s.mu.Unlock()
}

// Remove forgets everything about name: it is NXDOMAIN from now on.
func (s *Server) Remove(name string) {
	s.mu.Lock()
	k := key(name)
	delete(s.mx, k)
	delete(s.addrs, k)
	s.mu.Unlock()
}

// Queries returns the number of questions answered so far.
func (s *Server) Queries() int64 { return s.queries.Load() }

// Asked returns how often name was asked about with qtype ("MX", "A",
// "AAAA").
func (s *Server) Asked(name, qtype string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.asked[key(name)+" "+qtype]
}

func key(name string) string { return strings.ToLower(dns.Fqdn(name)) }

func (s *Server) serve(w dns.ResponseWriter, req *dns.Msg) {
	if len(req.Question) != 1 {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeFormatError)
		w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	s.mu.Lock()
	s.asked[name+" "+dns.TypeToString[q.Qtype]]++
	if s.silent[name] {
		s.mu.Unlock()
		return
	}
	m := s.answer(req, name, q.Qtype)
	s.mu.Unlock()
	s.queries.Add(1)
	w.WriteMsg(m)
}

// answer builds the reply to one question; s.mu is held.
func (s *Server) answer(req *dns.Msg, name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	if s.servfail[name] {
		m.Rcode = dns.RcodeServerFailure
		return m
	}
	mx, hasMX := s.mx[name]
	addrs, hasAddrs := s.addrs[name]
	if !hasMX && !hasAddrs {
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{s.soa(name)}
		return m
	}
	hdr := func(t uint16) dns.RR_Header {
		return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: s.ttl}
	}
	switch qtype {
	case dns.TypeMX:
		for _, r := range mx {
			m.Answer = append(m.Answer, &dns.MX{Hdr: hdr(dns.TypeMX), Preference: r.Pref, Mx: dns.Fqdn(r.Host)})
		}
	case dns.TypeA, dns.TypeAAAA:
		for _, a := range addrs {
			switch {
			case a.Is4() && qtype == dns.TypeA:
				m.Answer = append(m.Answer, &dns.A{Hdr: hdr(dns.TypeA), A: a.AsSlice()})
			case a.Is6() && qtype == dns.TypeAAAA:
				m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr(dns.TypeAAAA), AAAA: a.AsSlice()})
			}
		}
	}
	if len(m.Answer) == 0 {
		m.Ns = []dns.RR{s.soa(name)}
	}
	return m
}

func (s *Server) soa(name string) dns.RR {
	return &dns.SOA{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: s.ttl},
		Ns: "ns.test.", Mbox: "hostmaster.test.", Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: s.ttl}
}
