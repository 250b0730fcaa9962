package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outbox-mail/outbox/dkim"
	"github.com/outbox-mail/outbox/queue/sqlite"
)

// deliverabilityFor parses args into a service over a fresh SQLite store
// in dir and builds its deliverability.
func deliverabilityFor(t *testing.T, dir string, args ...string) (*deliverability, error) {
	t.Helper()
	db := filepath.Join(dir, "outbox.db")
	cfg, err := parseServeConfig(append([]string{"--db", "sqlite:" + db}, args...))
	if err != nil {
		return nil, err
	}
	st, err := sqlite.Open(db, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	d := &service{cfg: cfg, log: discardLog, store: st}
	return d.buildDeliverability(nil)
}

func writeMode(t *testing.T, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDeliverabilityFlags: keys and secrets load at start, a generated
// secret is kept (mode 0600) and reused, and every mistake stops the
// start with a message that names the flag.
func TestDeliverabilityFlags(t *testing.T) {
	dir := t.TempDir()
	k, _ := dkim.GenerateKey("ed25519", 0)
	pemBytes, _ := dkim.MarshalPrivateKey(k)
	key := writeMode(t, dir, "k.pem", string(pemBytes), 0o600)
	dv, err := deliverabilityFor(t, dir, "--dkim", "shop.test:s1:"+key, "--bounce-domain", "bounces.shop.test",
		"--public-url", "https://mail.shop.test/")
	if err != nil {
		t.Fatal(err)
	}
	e := dv.engine
	if e.DKIM == nil || e.VERP == nil || e.VERP.Domain() != "bounces.shop.test" || e.Unsubscribe == nil ||
		e.Unsubscribe.BaseURL != "https://mail.shop.test" || !e.Unsubscribe.Mailto || dv.feedback == nil {
		t.Fatalf("deliverability %+v", dv)
	}
	secret := filepath.Join(dir, "feedback.secret")
	st, err := os.Stat(secret)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("generated secret: %v %v", st, err)
	}
	first, _ := os.ReadFile(secret)
	if _, err := deliverabilityFor(t, dir, "--bounce-domain", "bounces.shop.test"); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(secret); string(again) != string(first) {
		t.Error("the generated secret changed on the second start")
	}
	if dv, err := deliverabilityFor(t, t.TempDir()); err != nil || dv.engine.DKIM != nil || dv.engine.VERP != nil || dv.feedback != nil {
		t.Errorf("no flags: %+v, %v", dv, err)
	}
	open := writeMode(t, dir, "open.secret", "0123456789abcdef0123\n", 0o644)
	short := writeMode(t, dir, "short.secret", "tooshort\n", 0o600)
	for want, args := range map[string][]string{
		"--dkim #1":                  {"--dkim", "shop.test:s1:" + filepath.Join(dir, "missing.pem")},
		"--dkim #2":                  {"--dkim", "shop.test:s1:" + key, "--dkim", "shop.test"},
		"--public-url":               {"--public-url", "mail.shop.test"},
		"--bounce-domain":            {"--bounce-domain", "nodot"},
		"readable by every user":     {"--bounce-domain", "b.shop.test", "--bounce-secret-file", open},
		"shorter than 16":            {"--public-url", "https://m.test", "--unsubscribe-secret-file", short},
		"need --bounce-domain or --": {"--bounce-secret-file", short},
	} {
		_, err := deliverabilityFor(t, t.TempDir(), args...)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: %v, want an error about %s", args, err, want)
		}
	}
}
