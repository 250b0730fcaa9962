package route

import (
	"testing"

	"github.com/miekg/dns"
)

// FuzzAnswer feeds arbitrary DNS responses through what resolution does
// with them: it must never panic, and a set it returns has hosts.
func FuzzAnswer(f *testing.F) {
	m := new(dns.Msg)
	m.SetQuestion("a.test.", dns.TypeMX)
	m.Answer = []dns.RR{&dns.MX{Hdr: dns.RR_Header{Name: "a.test.", Rrtype: dns.TypeMX, Class: dns.ClassINET, Ttl: 60}, Preference: 0, Mx: "."}}
	b, _ := m.Pack()
	f.Add(b)
	m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "a.test.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: []byte{127, 0, 0, 2}}}
	b, _ = m.Pack()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		var resp dns.Msg
		if resp.Unpack(b) != nil {
			return
		}
		for _, qt := range []uint16{dns.TypeMX, dns.TypeA, dns.TypeAAAA} {
			a, ttl := records(&resp, qt)
			if ttl < 0 {
				t.Fatalf("negative TTL %v", ttl)
			}
			set, err := mxSet("a.test", answer{rcode: a.rcode, mx: a.mx}, func() (bool, error) { return true, nil })
			if err == nil && len(set.Hosts) == 0 {
				t.Fatal("a set without hosts")
			}
		}
	})
}
