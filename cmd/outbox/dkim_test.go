package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/outbox-mail/outbox/dkim"
)

// keygen writes a key only its owner can read, prints the record that
// publishes exactly that key, and never overwrites a key unless told to.
func TestDKIMKeygen(t *testing.T) {
	dir := t.TempDir()
	for _, kind := range []string{"rsa", "ed25519"} {
		out := filepath.Join(dir, kind+".pem")
		code, stdout, stderr := runOutbox(t, "dkim", "keygen", "--domain", "Example.com", "--selector", "s2025", "--type", kind, "--out", out)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", kind, code, stderr)
		}
		fi, err := os.Stat(out)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: key file %v, mode %v; want 0600", kind, err, fi.Mode())
		}
		k, err := dkim.ParseSpec("example.com:s2025:" + out)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := dkim.TXTRecord(k.Signer.Public())
		zone := regexp.MustCompile(`^s2025\._domainkey\.example\.com\. IN TXT ((?:"[^"]{1,255}" ?)+)\n`).FindStringSubmatch(stdout)
		if zone == nil {
			t.Fatalf("%s: no zone-file record in\n%s", kind, stdout)
		}
		if got := strings.NewReplacer(`" "`, "", `"`, "").Replace(strings.TrimSpace(zone[1])); got != want {
			t.Errorf("%s: record %q, want %q", kind, got, want)
		}
		if !strings.Contains(stdout, "name:  s2025._domainkey.example.com\nvalue: "+want+"\n") {
			t.Errorf("%s: no name and value lines in\n%s", kind, stdout)
		}
		if !strings.Contains(stderr, "--dkim example.com:s2025:"+out) {
			t.Errorf("%s: stderr does not say how to use the key: %q", kind, stderr)
		}
	}

	out := filepath.Join(dir, "rsa.pem")
	before, _ := os.ReadFile(out)
	code, _, stderr := runOutbox(t, "dkim", "keygen", "--domain", "example.com", "--selector", "s", "--out", out)
	after, _ := os.ReadFile(out)
	if code != 1 || !strings.Contains(stderr, "exists") || string(before) != string(after) {
		t.Errorf("overwrite without --force: exit %d, %q, file changed: %v", code, stderr, string(before) != string(after))
	}
	code, _, stderr = runOutbox(t, "dkim", "keygen", "--domain", "example.com", "--selector", "s", "--type", "ed25519", "--out", out, "--force")
	after, _ = os.ReadFile(out)
	if code != 0 || string(before) == string(after) || !strings.Contains(string(after), "PRIVATE KEY") {
		t.Errorf("--force: exit %d %s, replaced: %v", code, stderr, string(before) != string(after))
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o600 {
		t.Errorf("replaced key has mode %v", fi.Mode())
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".dkim-key-*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestDKIMKeygenErrors(t *testing.T) {
	out := filepath.Join(t.TempDir(), "k.pem")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"dkim"}, "usage: outbox dkim keygen"},
		{[]string{"dkim", "rotate"}, `unknown subcommand "rotate"`},
		{[]string{"dkim", "keygen", "--selector", "s", "--out", out}, "--domain, --selector and --out are required"},
		{[]string{"dkim", "keygen", "--domain", "example.com", "--selector", "s", "--out", out, "--type", "dsa"}, `key type "dsa"`},
		{[]string{"dkim", "keygen", "--domain", "example.com", "--selector", "s", "--out", out, "--bits", "1024"}, "2048 to 4096"},
		{[]string{"dkim", "keygen", "--domain", "exa mple.com", "--selector", "s", "--out", out}, "not a domain name"},
		{[]string{"dkim", "keygen", "--domain", "example.com", "--selector", "a/b", "--out", out}, "not a DNS label"},
	} {
		code, _, stderr := runOutbox(t, tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want 2 and one line saying %q", tc.args, code, stderr, tc.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("%v wrote a key", tc.args)
		}
	}
	code, _, _ := runOutbox(t, "dkim", "keygen", "--help")
	if code != 0 {
		t.Errorf("--help: exit %d", code)
	}
}
