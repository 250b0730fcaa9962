package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/route"
)

var discardLog = slog.New(slog.NewTextHandler(io.Discard, nil))

func routingFor(t *testing.T, args ...string) (*routing, error) {
	t.Helper()
	cfg, err := parseServeConfig(args)
	if err != nil {
		return nil, err
	}
	return buildRouting(cfg, discardLog)
}

func TestRoutingFlags(t *testing.T) {
	r, err := routingFor(t, "--relay", "mx", "--dns", "127.0.0.1:5353", "--mx-port", "2525",
		"--route", "a.test=smtp://u:pw@relay.test:587", "--route", ".b.test=mx",
		"--timeout-connect", "3s", "--timeout-command", "40s", "--timeout-data-end", "2m",
		"--max-connections", "50", "--max-connections-per-destination", "4", "--hostname", "mta.example.test")
	if err != nil {
		t.Fatal(err)
	}
	e := r.engine
	if e == nil || e.Resolver == nil || e.MXPort != 2525 || r.maxConns != 50 || r.perDs != 4 {
		t.Fatalf("routing %+v", r)
	}
	if got := e.Table.Lookup("a.test").Name(); got != "relay:relay.test:587" {
		t.Errorf("a.test routes to %s", got)
	}
	if got := e.Table.Lookup("x.b.test").Name(); got != "mx" || e.Table.Default().Name() != "mx" {
		t.Errorf("x.b.test routes to %s, default %s", got, e.Table.Default().Name())
	}
	to := e.SMTP.Timeouts
	if to.Dial != 3*time.Second || to.Command != 40*time.Second || to.Greeting != 40*time.Second ||
		to.MailRcpt != 40*time.Second || to.DataTerm != 2*time.Minute || e.SMTP.LocalName != "mta.example.test" {
		t.Errorf("SMTP options %+v", e.SMTP)
	}
	if strings.Contains(r.describeRoutes(), "pw") {
		t.Errorf("start-up line shows a password: %s", r.describeRoutes())
	}
}

func TestRoutingCaptureAndDefaults(t *testing.T) {
	r, err := routingFor(t)
	if err != nil || !r.capture || r.maxConns != 100 || r.perDs != 20 {
		t.Fatalf("no flags: %+v, %v; want capture only, 100 and 20", r, err)
	}
	// Capture only still has engine routing, so that a reload can add
	// routes; it needs no resolver.
	if r.engine == nil || r.engine.Table.Default().Target.Kind != route.Capture || r.engine.Resolver != nil {
		t.Fatalf("no flags: engine routing %+v; want a capture default without a resolver", r.engine)
	}
	// Routes without a relay: those domains are delivered, the rest captured.
	r, err = routingFor(t, "--route", "a.test=smtp://relay.test:25")
	if err != nil || r.engine == nil || !r.capture || r.engine.Resolver != nil {
		t.Fatalf("route without relay: %+v, %v", r, err)
	}
	if r.engine.Table.Default().Target.Kind != route.Capture {
		t.Error("default route is not capture")
	}
	// --workers is the deprecated name of --max-connections.
	if r, err = routingFor(t, "--workers", "7"); err != nil || r.maxConns != 7 {
		t.Errorf("--workers 7: %+v, %v", r, err)
	}
	if r, err = routingFor(t, "--workers", "7", "--max-connections", "9"); err != nil || r.maxConns != 9 {
		t.Errorf("--max-connections wins over --workers: %+v, %v", r, err)
	}
}

func TestRoutingFromEnvironmentAndFile(t *testing.T) {
	t.Setenv("OUTBOX_ROUTE", "a.test=mx, b.test=smtp://relay.test:25")
	t.Setenv("OUTBOX_RELAY", "mx")
	t.Setenv("OUTBOX_DNS", "127.0.0.1:53")
	cfgFile := filepath.Join(t.TempDir(), "c.json")
	os.WriteFile(cfgFile, []byte(`{"routes": [{"domain": "c.test", "target": "smtp://relay.test:2525", "max_connections": 3, "rate": "10/s"}],
		"max_connections": 64}`), 0o600)
	r, err := routingFor(t, "--config", cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	tab := r.engine.Table
	if tab.Lookup("a.test").Name() != "mx" || tab.Lookup("b.test").Name() != "relay:relay.test:25" {
		t.Errorf("environment routes not read: a %s b %s", tab.Lookup("a.test").Name(), tab.Lookup("b.test").Name())
	}
	c := tab.Lookup("c.test")
	if c.Name() != "relay:relay.test:2525" || c.MaxConnections != 3 || c.Rate != (route.Rate{N: 10, Per: time.Second}) {
		t.Errorf("config route: %+v", c)
	}
	if r.maxConns != 64 {
		t.Errorf("max_connections from the file: %d", r.maxConns)
	}
}

func TestRoutingErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"routes": [{"domain": "c.test", "target": "smtp://u:hunter2@relay.test:0"}]}`), 0o600)
	unknown := filepath.Join(t.TempDir(), "unknown.json")
	os.WriteFile(unknown, []byte(`{"routes": [{"domain": "c.test", "target": "mx", "speed": 3}]}`), 0o600)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--route", "example.com"}, "--route #1: want DOMAIN=TARGET"},
		{[]string{"--route", "a.test=smtp://user:hunter2@h:99999"}, "invalid port"},
		{[]string{"--route", "a.test=pop3://h"}, "unknown scheme"},
		{[]string{"--relay", "mx", "--dns", "nonsense"}, "--dns"},
		{[]string{"--dns", "nonsense"}, `--dns: DNS server "nonsense"`}, // unused, still checked
		{[]string{"--relay", "mx", "--dns", "127.0.0.1:domain"}, "want HOST:PORT"},
		{[]string{"--relay", "ftp://x"}, "--relay"},
		{[]string{"--mx-port", "0"}, "--mx-port 0"},
		{[]string{"--mx-port", "70000"}, "--mx-port 70000"},
		{[]string{"--timeout-connect", "0s"}, "--timeout-connect"},
		{[]string{"--timeout-command", "-1s"}, "--timeout-command"},
		{[]string{"--timeout-data-end", "0"}, "--timeout-data-end"},
		{[]string{"--max-connections", "0"}, "--max-connections 0"},
		{[]string{"--max-connections-per-destination", "-1"}, "--max-connections-per-destination"},
		{[]string{"--route", "a.test=mx", "--route", "a.test=mx"}, "two routes for a.test"},
		{[]string{"--config", bad}, "routes[0]"},
		{[]string{"--config", unknown}, "speed"},
	} {
		_, err := routingFor(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("serve %v: %v; want an error with %q", tc.args, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("serve %v: the error shows the password: %v", tc.args, err)
		}
	}
}

// TestUnverifiedRelayWarned: a relay reached with tls_verify=false is
// named in one loud warning at start; verified ones are not.
func TestUnverifiedRelayWarned(t *testing.T) {
	var logs strings.Builder
	cfg, err := parseServeConfig([]string{"--relay", "smtp://relay.test:587?tls_verify=false",
		"--route", "ok.test=smtp://good.test:587"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := buildRouting(cfg, slog.New(slog.NewTextHandler(&logs, nil))); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	if strings.Count(out, "TLS CERTIFICATE NOT VERIFIED") != 1 || !strings.Contains(out, "relay.test:587") ||
		strings.Contains(out, "good.test") {
		t.Errorf("start-up warnings:\n%s", out)
	}
}

// TestDurationFlagErrors: a duration without its unit, from a flag, the
// environment or the config file, is refused with what a duration looks
// like, naming where it came from; a good one is read.
func TestDurationFlagErrors(t *testing.T) {
	cfgFile := filepath.Join(t.TempDir(), "c.json")
	os.WriteFile(cfgFile, []byte(`{"retry_max": 10}`), 0o600)
	for _, tc := range []struct {
		args []string
		env  string
		want string
	}{
		{[]string{"--timeout-connect", "5"}, "", `-timeout-connect: "5" is not a duration: give its unit, e.g. 30s`},
		{nil, "OUTBOX_LEASE=2", `OUTBOX_LEASE: "2" is not a duration`},
		{[]string{"--config", cfgFile}, "", `retry_max: "10" is not a duration`},
	} {
		if tc.env != "" {
			k, v, _ := strings.Cut(tc.env, "=")
			t.Setenv(k, v)
		}
		_, err := parseServeConfig(tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("serve %v (env %q): %v; want an error with %q", tc.args, tc.env, err, tc.want)
		}
		if tc.env != "" {
			k, _, _ := strings.Cut(tc.env, "=")
			os.Unsetenv(k)
		}
	}
	cfg, err := parseServeConfig([]string{"--timeout-connect", "1m30s"})
	if err != nil || cfg.routing.timeoutConnect != 90*time.Second {
		t.Fatalf("--timeout-connect 1m30s: %v, %v", cfg, err)
	}
}
