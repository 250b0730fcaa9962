package main

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const (
	sampleConfig = "../../dist/outbox.json"
	systemdUnit  = "../../dist/outbox.service"
	dockerfile   = "../../Dockerfile"
)

// TestSampleConfigLoads reads dist/outbox.json with the daemon's own
// loader, as 'outbox serve --config' does.
func TestSampleConfigLoads(t *testing.T) {
	c, err := parseServeConfig([]string{"--config", sampleConfig})
	if err != nil {
		t.Fatalf("the sample config does not load: %v", err)
	}
	if c.httpAddr != "0.0.0.0:8025" || c.db != "sqlite:/var/lib/outbox/outbox.db" ||
		c.hard.apiTokenFile == "" || c.hard.relayFile == "" {
		t.Errorf("the sample's settings were not all read: %+v", c)
	}
}

// TestSampleConfigDocumentsEveryKey fails for a key of 'outbox serve' that
// dist/outbox.json does not show (set, or commented out with its
// default), and for a commented-out example that would not load.
func TestSampleConfigDocumentsEveryKey(t *testing.T) {
	data, err := os.ReadFile(sampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	keys := []string{"routes", "webhooks"}
	serveFlags(&serveConfig{}).VisitAll(func(f *flag.Flag) {
		if f.Name != "config" {
			keys = append(keys, configKey(f.Name))
		}
	})
	for _, k := range keys {
		if !strings.Contains(text, `"`+k+`":`) {
			t.Errorf("dist/outbox.json does not document %q", k)
		}
	}
	// Each commented-out "key": value line loads on its own.
	example := regexp.MustCompile(`(?m)^\s*//\s*("[a-z_]+":.*?),?\s*$`)
	n := 0
	for _, m := range example.FindAllStringSubmatch(text, -1) {
		n++
		f := filepath.Join(t.TempDir(), "one.json")
		os.WriteFile(f, []byte("{"+m[1]+"}"), 0o600)
		if _, err := parseServeConfig([]string{"--config", f}); err != nil {
			t.Errorf("the sample's example %s does not load: %v", m[1], err)
		}
	}
	if n < 20 {
		t.Errorf("found %d commented-out examples; the pattern no longer matches the file", n)
	}
}

// TestSystemdUnitMatchesSample checks that each credential the sample
// config reads is one the unit loads, and that the unit starts the daemon
// with the sample's path and reloads it with SIGHUP.
func TestSystemdUnitMatchesSample(t *testing.T) {
	unit, err := os.ReadFile(systemdUnit)
	if err != nil {
		t.Fatal(err)
	}
	sample, _ := os.ReadFile(sampleConfig)
	// The keys set, not those commented out: a credential the unit loads
	// must exist, or the unit does not start.
	for _, m := range regexp.MustCompile(`/run/credentials/outbox\.service/([a-z-]+)`).FindAllStringSubmatch(string(stripComments(sample)), -1) {
		if !strings.Contains(string(unit), "LoadCredential="+m[1]+":") {
			t.Errorf("the sample reads credential %s, which the unit does not load", m[1])
		}
	}
	for _, want := range []string{"ExecStart=/usr/local/bin/outbox serve --config /etc/outbox/outbox.json",
		"ExecReload=/bin/kill -HUP $MAINPID", "DynamicUser=yes", "StateDirectory=outbox", "ProtectSystem=strict",
		"NoNewPrivileges=yes", "LimitNOFILE="} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("the unit lacks %s", want)
		}
	}
}

// TestDockerfileInvariants holds the Dockerfile to what the image
// promises, where no Docker engine can build it: a static, trimmed,
// stamped binary; an unprivileged numeric user; the volume holding the
// store; the ports the environment names; a health check by the binary
// itself.
func TestDockerfileInvariants(t *testing.T) {
	data, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	df := string(data)
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-X main.stampedVersion=", "-X main.stampedCommit=",
		"USER 65532:65532", `VOLUME ["/var/lib/outbox"]`, "OUTBOX_DB=sqlite:/var/lib/outbox/outbox.db",
		"OUTBOX_HTTP=0.0.0.0:8025", "OUTBOX_SMTP=0.0.0.0:2525", "EXPOSE 8025 2525",
		`CMD ["/usr/local/bin/outbox", "healthcheck"`, `ENTRYPOINT ["/usr/local/bin/outbox"]`} {
		if !strings.Contains(df, want) {
			t.Errorf("the Dockerfile lacks %s", want)
		}
	}
	if n := strings.Count(df, "\nFROM "); n != 2 {
		t.Errorf("%d stages, want a build stage and a final one", n)
	}
	// -X sets nothing, silently, if the variables it names are renamed:
	// this stops compiling first.
	_ = []*string{&stampedVersion, &stampedCommit}
}
