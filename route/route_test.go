package route

import (
	"strings"
	"testing"
	"time"
)

func TestParseRoute(t *testing.T) {
	r, err := ParseRoute("Example.COM=mx")
	if err != nil || r.Domain != "example.com" || r.Target.Kind != MX || r.Name() != "mx" {
		t.Fatalf("ParseRoute mx: %+v, %v", r, err)
	}
	r, err = ParseRoute(".corp.test=smtp://u:secret@relay.corp.test:2525?starttls=off")
	if err != nil || r.Domain != ".corp.test" || r.Target.Kind != Relay || r.Name() != "relay:relay.corp.test:2525" {
		t.Fatalf("ParseRoute relay: %+v, %v", r, err)
	}
	r, err = ParseRoute("bücher.test=mx")
	if err != nil || r.Domain != "xn--bcher-kva.test" {
		t.Fatalf("IDN domain: %+v, %v", r, err)
	}
	for in, want := range map[string]string{
		"example.com":                      "DOMAIN=TARGET",
		"=mx":                              "empty domain",
		"example.com=":                     "empty target",
		"example.com=ftp://x":              "unknown scheme",
		"[127.0.0.1]=mx":                   "address literals",
		"example.com=smtp://u:hunter2@h:x": "malformed",
	} {
		_, err := ParseRoute(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseRoute(%q) = %v, want an error with %q", in, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("ParseRoute(%q) error shows the password: %v", in, err)
		}
	}
}

func TestNewRouteLimits(t *testing.T) {
	r, err := NewRoute("a.test", "mx", 3, "10/s")
	if err != nil || r.MaxConnections != 3 || r.Rate != (Rate{10, time.Second}) || r.Rate.Interval() != 100*time.Millisecond {
		t.Fatalf("NewRoute: %+v, %v", r, err)
	}
	if _, err := NewRoute("a.test", "mx", -1, ""); err == nil || !strings.Contains(err.Error(), "max_connections") {
		t.Errorf("negative max_connections: %v", err)
	}
	if _, err := NewRoute("a.test", "mx", 0, "fast"); err == nil || !strings.Contains(err.Error(), "rate") {
		t.Errorf("bad rate: %v", err)
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]Rate{"": {}, "10/s": {10, time.Second}, "600/min": {600, time.Minute},
		" 5 / h ": {5, time.Hour}, "1/m": {1, time.Minute}} {
		got, err := ParseRate(in)
		if err != nil || got != want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
		if back, _ := ParseRate(got.String()); back != got {
			t.Errorf("%v does not round-trip through String %q", got, got.String())
		}
	}
	for _, bad := range []string{"10", "0/s", "-1/s", "10/d", "x/s", "10/", "9999999/s"} {
		if _, err := ParseRate(bad); err == nil {
			t.Errorf("ParseRate(%q) succeeded", bad)
		}
	}
}

func TestTableLookup(t *testing.T) {
	def := Route{Target: Target{Kind: MX}}
	a, _ := ParseRoute("a.test=smtp://relay-a.test:25")
	sub, _ := ParseRoute(".b.test=smtp://relay-b.test:25")
	tab, err := NewTable(def, []Route{a, sub})
	if err != nil {
		t.Fatal(err)
	}
	for dom, want := range map[string]string{"a.test": "relay:relay-a.test:25", "x.a.test": "mx",
		"b.test": "mx", "x.b.test": "relay:relay-b.test:25", "y.x.b.test": "relay:relay-b.test:25", "c.test": "mx"} {
		if got := tab.Lookup(dom).Name(); got != want {
			t.Errorf("Lookup(%s) = %s, want %s", dom, got, want)
		}
	}
	if !tab.Uses(MX) || !tab.Uses(Relay) || tab.Uses(Capture) {
		t.Error("Uses reports the wrong kinds")
	}
	if _, err := NewTable(def, []Route{a, a}); err == nil || !strings.Contains(err.Error(), "two routes") {
		t.Errorf("duplicate route: %v", err)
	}
}

func TestDomain(t *testing.T) {
	for in, want := range map[string]string{"a@B.Test": "b.test", `"x@y"@c.test.`: "c.test", "u@bücher.test": "xn--bcher-kva.test"} {
		if got, err := Domain(in); err != nil || got != want {
			t.Errorf("Domain(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"nobody", "a@", "a@[10.0.0.1]"} {
		if _, err := Domain(bad); err == nil {
			t.Errorf("Domain(%q) succeeded", bad)
		}
	}
}

func TestOrderShufflesOnlyEqualPreferences(t *testing.T) {
	s := &MXSet{Hosts: []MXHost{{"a", 10}, {"b", 10}, {"c", 10}, {"d", 20}, {"e", 30}, {"f", 30}}}
	firsts := map[string]int{}
	seed := 0
	intn := func(n int) int { seed = (seed*1103515245 + 12345) & 0x7fffffff; return seed % n }
	for range 300 {
		o := s.Order(intn)
		if o[3].Name != "d" || (o[4].Name != "e" && o[4].Name != "f") || o[0].Preference != 10 || o[2].Preference != 10 {
			t.Fatalf("order broke preferences: %v", o)
		}
		firsts[o[0].Name]++
	}
	if len(firsts) != 3 {
		t.Errorf("equal preferences not randomised: first hosts %v", firsts)
	}
	if s.Hosts[0].Name != "a" {
		t.Error("Order changed the set itself")
	}
}

func TestMXSetRules(t *testing.T) {
	noImplicit := func() (bool, error) { t.Fatal("implicit MX consulted"); return false, nil }
	s, err := mxSet("a.test", answer{rcode: rcodeSuccess, mx: []MXHost{{"mx2.a.test", 20}, {"mx1.a.test", 10}}}, noImplicit)
	if err != nil || s.Hosts[0].Name != "mx1.a.test" || s.Key() != "mx1.a.test,mx2.a.test" || s.Primary() != "mx1.a.test" {
		t.Fatalf("MX set: %+v, %v", s, err)
	}
	_, err = mxSet("n.test", answer{rcode: rcodeSuccess, mx: []MXHost{{"", 0}}}, noImplicit)
	checkErr(t, err, true, "5.1.10")
	_, err = mxSet("x.test", answer{rcode: rcodeNameError}, noImplicit)
	checkErr(t, err, true, "5.1.2")
	_, err = mxSet("x.test", answer{rcode: 2}, noImplicit)
	checkErr(t, err, false, "4.4.3")
	s, err = mxSet("i.test", answer{rcode: rcodeSuccess}, func() (bool, error) { return true, nil })
	if err != nil || !s.Implicit || s.Key() != "i.test" {
		t.Fatalf("implicit MX: %+v, %v", s, err)
	}
	_, err = mxSet("i.test", answer{rcode: rcodeSuccess}, func() (bool, error) { return false, nil })
	checkErr(t, err, true, "5.4.4")
}

func checkErr(t *testing.T, err error, permanent bool, code string) {
	t.Helper()
	e, ok := err.(*Error)
	if !ok || e.Permanent != permanent || e.EnhancedCode != code {
		t.Errorf("error %v, want permanent=%v %s", err, permanent, code)
	}
}

func TestCacheBounded(t *testing.T) {
	c := newCache(100)
	now := time.Now()
	for i := range 1000 {
		c.put(cacheKey{name: strings.Repeat("x", i%50) + string(rune('a'+i%26)), qtype: uint16(i)}, answerRecords{}, time.Minute, now)
	}
	if n := c.len(); n > 100 {
		t.Fatalf("cache holds %d entries, bound 100", n)
	}
	c.put(cacheKey{name: "ttl"}, answerRecords{rcode: 3}, time.Second, now)
	if _, ok := c.get(cacheKey{name: "ttl"}, now.Add(999*time.Millisecond)); !ok {
		t.Error("entry gone before its TTL")
	}
	if _, ok := c.get(cacheKey{name: "ttl"}, now.Add(time.Second)); ok {
		t.Error("entry kept past its TTL")
	}
}

func FuzzParseRoute(f *testing.F) {
	for _, s := range []string{"a.test=mx", ".b.test=smtp://u:p@h:25?starttls=off", "=", "x=smtps://h", "[1.2.3.4]=mx", "bücher.test=MX"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRoute(s)
		if err != nil {
			return
		}
		if r.Domain == "" || r.Domain != strings.ToLower(r.Domain) {
			t.Fatalf("ParseRoute(%q) accepted domain %q", s, r.Domain)
		}
		if r.Target.Kind == Relay && strings.Contains(r.Name(), "@") {
			t.Fatalf("route name %q shows user information", r.Name())
		}
	})
}

func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"10/s", "1/m", "600/min", "5/h", "", "0/s", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRate(s)
		if err != nil {
			return
		}
		if !r.IsZero() && (r.N <= 0 || r.Interval() <= 0) {
			t.Fatalf("ParseRate(%q) = %+v", s, r)
		}
	})
}
