package main_test

import (
	"net"
	"strings"
	"testing"

	"github.com/outbox-mail/outbox/internal/dnstest"
	"github.com/outbox-mail/outbox/internal/smtpsink"
	"github.com/outbox-mail/outbox/queue"
)

// TestDaemonDeliversDirectAndByRoute runs the built daemon with --relay mx
// against an in-process DNS server (--dns, --mx-port) and one domain
// routed to a relay: each recipient reaches its own server, and the log
// has a Postfix-style line per recipient.
func TestDaemonDeliversDirectAndByRoute(t *testing.T) {
	mx := startSink(t, smtpsink.Options{})
	relay := startSink(t, smtpsink.Options{})
	dns, err := dnstest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer dns.Close()
	_, mxPort, _ := net.SplitHostPort(mx.Addr())
	dns.SetMX("direct.test", dnstest.MX{Pref: 10, Host: "mx.direct.test"})
	dns.SetAddrs("mx.direct.test", "127.0.0.1")
	dns.SetNullMX("nomail.test")
	d := startDaemon(t, t.TempDir(), "--relay", "mx", "--dns", dns.Addr(), "--mx-port", mxPort,
		"--route", "routed.test=smtp://"+relay.Addr()+"?starttls=off", "--timeout-connect", "5s")
	var acc struct{ ID string }
	body := `{"from":"app@example.test","to":["a@direct.test","b@routed.test","c@nomail.test"],"subject":"s","text":"x"}`
	if code := d.api("POST", "/v1/messages", "application/json", strings.NewReader(body), &acc); code != 202 {
		t.Fatalf("POST: HTTP %d", code)
	}
	m := d.waitStatus(acc.ID, queue.StatusPartial)
	if got := mx.Received(); len(got) != 1 || strings.Join(got[0].To, ",") != "a@direct.test" {
		t.Errorf("MX host received %+v", got)
	}
	if got := relay.Received(); len(got) != 1 || strings.Join(got[0].To, ",") != "b@routed.test" {
		t.Errorf("relay received %+v", got)
	}
	for _, r := range m.Recipients {
		if r.Address == "c@nomail.test" && (r.Status != "failed" || r.EnhancedCode != "5.1.10") {
			t.Errorf("null MX recipient: %+v", r)
		}
	}
	logs := d.logs.String()
	for _, want := range []string{"status=sent", "to=a@direct.test", "route=mx", "relay=mx.direct.test[127.0.0.1:" + mxPort + "]",
		"to=b@routed.test", "route=relay:" + relay.Addr(), "status=bounced", "to=c@nomail.test"} {
		if !strings.Contains(logs, want) {
			t.Errorf("daemon log lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(logs)
	}
}
