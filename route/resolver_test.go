package route_test

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/internal/dnstest"
	"github.com/outbox-mail/outbox/route"
)

func startDNS(t *testing.T) (*dnstest.Server, *route.Resolver) {
	t.Helper()
	srv, err := dnstest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	r, err := route.NewResolver(route.ResolverOptions{Server: srv.Addr(), Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return srv, r
}

func TestResolverMX(t *testing.T) {
	srv, r := startDNS(t)
	ctx := context.Background()
	srv.SetMX("a.test", dnstest.MX{Pref: 20, Host: "mx2.a.test"}, dnstest.MX{Pref: 10, Host: "MX1.a.test"})
	srv.SetAddrs("mx1.a.test", "127.0.0.2", "::1")
	set, err := r.MX(ctx, "a.test")
	if err != nil || len(set.Hosts) != 2 || set.Hosts[0].Name != "mx1.a.test" || set.Implicit {
		t.Fatalf("MX(a.test) = %+v, %v", set, err)
	}
	addrs, err := r.Addrs(ctx, "mx1.a.test")
	if err != nil || len(addrs) != 2 || addrs[0] != netip.MustParseAddr("::1") || addrs[1] != netip.MustParseAddr("127.0.0.2") {
		t.Fatalf("Addrs = %v, %v; want IPv6 then IPv4", addrs, err)
	}

	srv.SetAddrs("implicit.test", "127.0.0.3")
	set, err = r.MX(ctx, "implicit.test")
	if err != nil || !set.Implicit || set.Hosts[0].Name != "implicit.test" {
		t.Fatalf("implicit MX: %+v, %v", set, err)
	}

	srv.SetNullMX("null.test")
	srv.SetAddrs("null.test", "127.0.0.4")
	_, err = r.MX(ctx, "null.test")
	wantErr(t, err, true, "5.1.10")

	_, err = r.MX(ctx, "nowhere.test")
	wantErr(t, err, true, "5.1.2")

	srv.SetMX("noaddr.test")
	srv.SetServFail("servfail.test", true)
	_, err = r.MX(ctx, "servfail.test")
	wantErr(t, err, false, "4.4.3")

	srv.SetSilent("slow.test", true)
	start := time.Now()
	_, err = r.MX(ctx, "slow.test")
	wantErr(t, err, false, "4.4.3")
	if time.Since(start) > 10*time.Second {
		t.Errorf("a silent server held the lookup %v", time.Since(start))
	}
}

func TestResolverCachesForTTL(t *testing.T) {
	srv, r := startDNS(t)
	ctx := context.Background()
	srv.SetTTL(1)
	srv.SetMX("c.test", dnstest.MX{Pref: 10, Host: "mx.c.test"})
	for range 5 {
		if _, err := r.MX(ctx, "c.test"); err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.Asked("c.test", "MX"); n != 1 {
		t.Fatalf("MX asked %d times within its TTL, want 1", n)
	}
	// A SERVFAIL is never cached: the next lookup asks again.
	srv.SetServFail("f.test", true)
	r.MX(ctx, "f.test")
	r.MX(ctx, "f.test")
	if n := srv.Asked("f.test", "MX"); n != 2 {
		t.Errorf("SERVFAIL asked %d times, want 2 (never cached)", n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for srv.Asked("c.test", "MX") < 2 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		r.MX(ctx, "c.test")
	}
	if n := srv.Asked("c.test", "MX"); n != 2 {
		t.Errorf("after the TTL passed, MX asked %d times in all, want 2", n)
	}
}

func wantErr(t *testing.T, err error, permanent bool, code string) {
	t.Helper()
	var e *route.Error
	if !errors.As(err, &e) || e.Permanent != permanent || e.EnhancedCode != code {
		t.Errorf("error %v, want permanent=%v %s", err, permanent, code)
	}
}
