package dkim

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// dnsServer is a real DNS server on a loopback UDP port that answers TXT
// queries from a map: the public keys the verifiers look up.
type dnsServer struct {
	conn net.PacketConn
	mu   sync.Mutex
	txt  map[string][]string // lowercase name without final dot → strings
}

func startDNS(t *testing.T) *dnsServer {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &dnsServer{conn: conn, txt: map[string][]string{}}
	done := make(chan struct{})
	go func() { defer close(done); s.serve() }()
	t.Cleanup(func() { conn.Close(); <-done })
	return s
}

func (s *dnsServer) addr() string { return s.conn.LocalAddr().String() }

// publish serves a key's TXT record at selector._domainkey.domain.
func (s *dnsServer) publish(t *testing.T, k Key) {
	t.Helper()
	v, err := TXTRecord(k.Signer.Public())
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.txt[strings.ToLower(RecordName(k.Selector, k.Domain))] = SplitTXT(v)
	s.mu.Unlock()
}

func (s *dnsServer) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := s.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		if resp := s.answer(buf[:n]); resp != nil {
			s.conn.WriteTo(resp, from)
		}
	}
}

func (s *dnsServer) answer(query []byte) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return nil
	}
	name := strings.ToLower(strings.TrimSuffix(q.Name.String(), "."))
	s.mu.Lock()
	txt, ok := s.txt[name]
	s.mu.Unlock()
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired, RecursionAvailable: true}
	if !ok {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	b.StartQuestions()
	b.Question(q)
	b.StartAnswers()
	if ok && q.Type == dnsmessage.TypeTXT {
		b.TXTResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60},
			dnsmessage.TXTResource{TXT: txt})
	}
	out, err := b.Finish()
	if err != nil {
		return nil
	}
	return out
}

// lookupTXT resolves through the server, as a real resolver would.
func (s *dnsServer) lookupTXT(name string) ([]string, error) {
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", s.addr())
	}}
	return r.LookupTXT(context.Background(), name)
}
