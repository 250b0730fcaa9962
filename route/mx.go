package route

import (
	"fmt"
	"slices"
	"strings"
)

// MXHost is one mail exchanger of a domain.
type MXHost struct {
	// Name is the host name, lower case, without the trailing dot.
	Name       string
	Preference uint16
}

// MXSet is where direct delivery to a domain goes: its MX hosts in
// preference order, or for a domain without MX records the domain itself
// (the implicit MX of RFC 5321 §5.1).
type MXSet struct {
	Domain   string
	Hosts    []MXHost
	Implicit bool
}

// Key names the host set: domains whose MX sets hold the same host names
// share one destination (KumoMTA's "sites"), whatever their preferences.
func (s *MXSet) Key() string {
	names := make([]string, len(s.Hosts))
	for i, h := range s.Hosts {
		names[i] = h.Name
	}
	slices.Sort(names)
	return strings.Join(slices.Compact(names), ",")
}

// Primary is the most preferred host's name, for logs and attempts.
func (s *MXSet) Primary() string {
	if len(s.Hosts) == 0 {
		return s.Domain
	}
	return s.Hosts[0].Name
}

// Order returns the hosts to try for one connection: lowest preference
// first, shuffled among equal preferences (RFC 5321 §5.1) with intn, a
// source of random numbers like math/rand's IntN.
func (s *MXSet) Order(intn func(n int) int) []MXHost {
	out := slices.Clone(s.Hosts)
	for i := 0; i < len(out); {
		j := i + 1
		for j < len(out) && out[j].Preference == out[i].Preference {
			j++
		}
		group := out[i:j]
		for k := len(group) - 1; k > 0; k-- {
			m := intn(k + 1)
			group[k], group[m] = group[m], group[k]
		}
		i = j
	}
	return out
}

// Error is a failed resolution, worded as the recipient's result: a
// permanent one fails the recipient at once (null MX, no such domain),
// a temporary one defers it (the DNS did not answer).
type Error struct {
	Domain       string
	Permanent    bool
	Code         int    // 550 or 451, the SMTP code the failure stands for
	EnhancedCode string // RFC 3463/7505: 5.1.10, 5.1.2, 5.4.4, 4.4.3
	Text         string
}

// Error reads like "example.test: 550 5.1.10 the domain accepts no mail (null MX)".
func (e *Error) Error() string {
	return fmt.Sprintf("%s: %d %s %s", e.Domain, e.Code, e.EnhancedCode, e.Text)
}

// Temporary reports whether delivery may succeed later.
func (e *Error) Temporary() bool { return !e.Permanent }

func nullMX(domain string) *Error {
	return &Error{Domain: domain, Permanent: true, Code: 556, EnhancedCode: "5.1.10",
		Text: "recipient domain " + domain + " accepts no mail (null MX, RFC 7505)"}
}

func noSuchDomain(domain string) *Error {
	return &Error{Domain: domain, Permanent: true, Code: 550, EnhancedCode: "5.1.2",
		Text: "recipient domain " + domain + " does not exist (NXDOMAIN)"}
}

func noAddress(domain string) *Error {
	return &Error{Domain: domain, Permanent: true, Code: 550, EnhancedCode: "5.4.4",
		Text: "recipient domain " + domain + " has neither MX nor address records"}
}

func dnsTrouble(domain, what string) *Error {
	return &Error{Domain: domain, Code: 451, EnhancedCode: "4.4.3",
		Text: "DNS lookup for " + domain + " failed: " + what}
}

// answer is one DNS answer as resolution sees it, independent of the
// wire format so the rules below can be tested without a server.
type answer struct {
	rcode int // dns.Rcode*
	mx    []MXHost
	addrs int // A/AAAA records, for the implicit MX check
}

// mxSet applies RFC 5321 §5.1 and RFC 7505 to an MX answer. implicit is
// consulted only when the domain has no MX records: it reports whether
// the domain has addresses of its own.
func mxSet(domain string, a answer, implicit func() (bool, error)) (*MXSet, error) {
	switch a.rcode {
	case rcodeSuccess:
	case rcodeNameError:
		return nil, noSuchDomain(domain)
	default:
		return nil, dnsTrouble(domain, rcodeText(a.rcode))
	}
	if len(a.mx) == 0 {
		ok, err := implicit()
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, noAddress(domain)
		}
		return &MXSet{Domain: domain, Hosts: []MXHost{{Name: domain}}, Implicit: true}, nil
	}
	var hosts []MXHost
	for _, h := range a.mx {
		if h.Name == "" { // "." as an exchange
			continue
		}
		hosts = append(hosts, h)
	}
	if len(hosts) == 0 {
		// A null MX, alone as RFC 7505 wants it or not: nothing can
		// take the mail.
		return nil, nullMX(domain)
	}
	slices.SortStableFunc(hosts, func(x, y MXHost) int { return int(x.Preference) - int(y.Preference) })
	return &MXSet{Domain: domain, Hosts: hosts}, nil
}
