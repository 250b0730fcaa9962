package main

import (
	"fmt"
	"net"
	"strconv"

	"github.com/outbox-mail/outbox/internal/dnstest"
)

// sinks is where the servers under test deliver: one sink for a relay, or
// for -domains an "internet" of four mail hosts (127.0.0.2-5, one port)
// and a DNS server naming one MX host per domain, spread over them.
type sinks struct {
	all  []*sink
	dns  *dnstest.Server
	port int
}

func startSinks(c *config) (*sinks, error) {
	if c.domains == 0 {
		s, err := startSink()
		if err != nil {
			return nil, err
		}
		return &sinks{all: []*sink{s}}, nil
	}
	ss := &sinks{}
	for try := 0; len(ss.all) < 4 && try < 20; try++ {
		ss.closeSinks()
		if err := ss.listenHosts(); err != nil {
			continue
		}
	}
	if len(ss.all) < 4 {
		return nil, fmt.Errorf("no port free on 127.0.0.2-5 for the mail hosts")
	}
	dns, err := dnstest.Start()
	if err != nil {
		ss.closeSinks()
		return nil, err
	}
	ss.dns = dns
	for i := range c.domains {
		d := benchDomain(i)
		mx := "mx." + d
		dns.SetMX(d, dnstest.MX{Pref: 10, Host: mx})
		dns.SetAddrs(mx, fmt.Sprintf("127.0.0.%d", 2+i%4))
	}
	return ss, nil
}

// listenHosts starts the four mail hosts on one port.
func (ss *sinks) listenHosts() error {
	first, err := startSinkAt("127.0.0.2:0")
	if err != nil {
		return err
	}
	ss.all = []*sink{first}
	_, p, _ := net.SplitHostPort(first.addr())
	ss.port, _ = strconv.Atoi(p)
	for h := 3; h <= 5; h++ {
		s, err := startSinkAt(fmt.Sprintf("127.0.0.%d:%d", h, ss.port))
		if err != nil {
			return err
		}
		ss.all = append(ss.all, s)
	}
	return nil
}

func benchDomain(i int) string { return fmt.Sprintf("d%d.bench.test", i) }

// addr is the relay's address (one sink), or "" for direct delivery.
func (ss *sinks) addr() string {
	if ss.dns != nil {
		return ""
	}
	return ss.all[0].addr()
}

// outboxFlags route outbox to the sinks.
func (ss *sinks) outboxFlags(c *config) []string {
	if ss.dns == nil {
		return []string{"--relay", "smtp://" + ss.all[0].addr() + "?starttls=off"}
	}
	return []string{"--relay", "mx", "--dns", ss.dns.Addr(), "--mx-port", strconv.Itoa(ss.port),
		"--max-connections-per-destination", strconv.Itoa(c.perDest)}
}

func (ss *sinks) received() int64 {
	var n int64
	for _, s := range ss.all {
		n += s.received.Load()
	}
	return n
}

func (ss *sinks) closeSinks() {
	for _, s := range ss.all {
		s.close()
	}
	ss.all = nil
}

func (ss *sinks) close() {
	ss.closeSinks()
	if ss.dns != nil {
		ss.dns.Close()
	}
}
