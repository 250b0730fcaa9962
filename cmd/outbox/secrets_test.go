package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every form a store DSN comes in, well-formed or mistyped, is shown
// without its password, and an error that quotes it is scrubbed.
func TestRedactDSNEveryForm(t *testing.T) {
	const pw = "hunter22"
	for _, dsn := range []string{
		// URLs
		"postgres://outbox:hunter22@db:5432/mail",
		"postgresql://outbox:hunter22@db/mail?sslmode=disable",
		"postgres://outbox@db/mail?password=hunter22&x=1",
		"postgres://outbox@db/mail?sslmode=disable&PASSWORD=hunter22",
		"postgres://outbox@db/mail?sslpassword=hunter22",
		"postgres://outbox@db/mail?password=hun&ter22&sslmode=disable",
		"postgres://outbox:hunter22@db:notaport%zz/mail",
		"postgres://outbox:hunter%32%32@db/mail",
		"postgres://outbox:hunter22@[::1]:5432/mail",
		"postgres://outbox:hunter22@db1,db2/mail",
		// libpq keyword/value
		"host=db user=outbox password=hunter22 dbname=mail",
		"host=db password='hunter22' dbname=mail",
		"host=db password = hunter22",
		"password='hunter22 with space' host=db",
		`host=db password='hun\'ter22' user=x`,
		"host=db sslpassword=hunter22",
		// mistyped
		"postgres:hunter22@db/mail",
		"postgres:outbox:hunter22@db/mail",
		"postgres//outbox:hunter22@db/mail",
		"postgres:/outbox:hunter22@db/mail",
		"postgres:///outbox:hunter22@db/mail",
		"postgress://outbox:hunter22@db/mail",
		"outbox:hunter22@db:5432/mail",
		"postgres://outbox:hunter22@",
		"postgres://outbox:hunt@er22@db/mail",
		"mysql://outbox:hunter22@db/mail",
	} {
		secret := pw
		switch {
		case strings.Contains(dsn, "with space"):
			secret = "hunter22 with space"
		case strings.Contains(dsn, `hun\'ter22`):
			secret = `hun\'ter22`
		case strings.Contains(dsn, "hunt@er22"):
			secret = "hunt@er22"
		case strings.Contains(dsn, "hun&ter22"):
			secret = "hun&ter22"
		}
		got := redactDSN(dsn)
		if strings.Contains(got, "hunter") || strings.Contains(got, "%32%32") || strings.Contains(got, "er22") {
			t.Errorf("redactDSN(%q) = %q shows the password", dsn, got)
		}
		// A driver error quoting the DSN, or only its password, is
		// scrubbed of it.
		err := scrubError(errors.New("cannot parse `"+dsn+"`: failed; password was "+secret), dsn)
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "hunter") {
			t.Errorf("scrubError for %q left %q", dsn, err.Error())
		}
	}
	for _, keep := range []string{"sqlite:outbox-data/outbox.db", "postgres://outbox@db/mail?sslmode=disable",
		"host=db user=outbox dbname=mail"} {
		if got := redactDSN(keep); got != keep {
			t.Errorf("redactDSN(%q) = %q; nothing there is secret", keep, got)
		}
	}
	// The host stays readable, so the operator can tell which DSN it was.
	if got := redactDSN("postgres:hunter22@db.internal/mail"); !strings.Contains(got, "db.internal") {
		t.Errorf("mistyped DSN lost its host: %q", got)
	}
	// Errors keep their identity through scrubbing.
	base := usagef("--db %q is bad", "x:hunter22@h")
	var ue *usageError
	if err := scrubError(base, "x:hunter22@h"); !errors.As(err, &ue) || strings.Contains(err.Error(), "hunter") {
		t.Errorf("scrubbed usage error: %v", err)
	}
}

func TestParseSMTPUser(t *testing.T) {
	for in, want := range map[string][3]string{
		"app:secret":                  {"app", "secret", ""},
		"app:pa:ss":                   {"app", "pa:ss", ""},
		"app:secret:*@example.com":    {"app", "secret", "*@example.com"},
		"app:pa:ss:billing@x.example": {"app", "pa:ss", "billing@x.example"},
	} {
		n, p, f, err := parseSMTPUser(in)
		if err != nil || [3]string{n, p, f} != want {
			t.Errorf("parseSMTPUser(%q) = %q %q %q %v, want %q", in, n, p, f, err, want)
		}
	}
	for _, bad := range []string{"app", ":secret", "app:", "app::*@x", "just-a-password"} {
		_, _, _, err := parseSMTPUser(bad)
		if err == nil {
			t.Errorf("parseSMTPUser(%q) succeeded", bad)
		} else if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "just-a-password") {
			t.Errorf("error for %q shows the password: %v", bad, err)
		}
	}
	if _, _, err := smtpUsers([]string{"a:one", "a:two"}); err == nil {
		t.Error("one user with two passwords accepted")
	}
	_, senders, err := smtpUsers([]string{"a:pw:*@x.example", "a:pw:*@y.example"})
	if err != nil || len(senders["a"]) != 2 {
		t.Errorf("patterns do not add up: %v %v", senders, err)
	}
}

func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	c := &serveConfig{}
	c.hard.apiTokenFile = write("tokens", "# tokens\ntoken-one-0123456789\n\n  token-two-0123456789  \n", 0o600)
	c.hard.smtpUserFile = write("users", "app:pw-from-file\n", 0o640)
	c.hard.relayFile = write("relay", "smtp://u:relay-pw@relay.example:587\n", 0o600)
	if err := c.loadSecretFiles(); err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.apiTokens, " ") != "token-one-0123456789 token-two-0123456789" ||
		strings.Join(c.smtpUsers, " ") != "app:pw-from-file" || c.relay != "smtp://u:relay-pw@relay.example:587" {
		t.Fatalf("loaded %q %q %q", c.apiTokens, c.smtpUsers, c.relay)
	}
	for name, cfg := range map[string]*serveConfig{
		"world-readable": {hard: hardening{apiTokenFile: write("open", "tok-0123456789abcdef\n", 0o644)}},
		"missing":        {hard: hardening{apiTokenFile: filepath.Join(dir, "nope")}},
		"empty":          {hard: hardening{smtpUserFile: write("empty", "# nothing\n", 0o600)}},
		"relay twice":    {relay: "smtp://x", hard: hardening{relayFile: filepath.Join(dir, "relay")}},
		"two relays":     {hard: hardening{relayFile: write("relays", "smtp://a\nsmtp://b\n", 0o600)}},
	} {
		err := cfg.loadSecretFiles()
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if strings.Contains(err.Error(), "tok-0123") || strings.Contains(err.Error(), "smtp://a") {
			t.Errorf("%s: error shows the secret: %v", name, err)
		}
	}
}

func TestConnectionCaps(t *testing.T) {
	for _, c := range []struct {
		limit      uint64
		smtp, http int
		smtpOn     bool
		wantS      int
		wantH      int
		fail       bool
	}{
		{limit: 1024, smtpOn: true, wantS: 384, wantH: 384},
		{limit: 1024, smtpOn: false, wantS: 768, wantH: 768},
		{limit: 1 << 20, smtpOn: true, wantS: 1000, wantH: 1000},
		{limit: 1024, smtp: 600, smtpOn: true, wantS: 600, wantH: 168},
		{limit: 1024, smtp: 600, http: 300, smtpOn: true, fail: true},
		{limit: 200, smtpOn: true, fail: true},
	} {
		s, h, err := connectionCaps(c.limit, c.smtp, c.http, c.smtpOn)
		if c.fail {
			if err == nil {
				t.Errorf("%+v: accepted (%d, %d)", c, s, h)
			}
			continue
		}
		if err != nil || s != c.wantS || h != c.wantH {
			t.Errorf("%+v: got %d, %d, %v", c, s, h, err)
		}
		if c.smtpOn && uint64(s+h) > c.limit-minReserve {
			t.Errorf("%+v: caps %d+%d leave less than %d of %d", c, s, h, minReserve, c.limit)
		}
	}
}

// FuzzRedactDSN builds every DSN form around a password and checks that
// redactDSN never shows it.
func FuzzRedactDSN(f *testing.F) {
	f.Add("outbox", "hunter22", "db.internal")
	f.Add("u", "p@ss:w/rd", "[::1]:5432")
	f.Fuzz(func(t *testing.T, user, pw, host string) {
		// A password that is short, also in the user or host name, or made
		// of the mask itself cannot be told apart in the output; white space
		// and quotes end a keyword value by definition, and in a query an
		// unencoded "&key=" starts another parameter.
		if len(pw) < 6 || strings.ContainsFunc(pw, func(r rune) bool { return r <= ' ' || strings.ContainsRune("'\\\"*&=", r) }) ||
			strings.Contains(pw, "xxx") || strings.Contains(user+host, pw) || strings.ContainsAny(user+host, "@ ") {
			return
		}
		for _, dsn := range []string{
			"postgres://" + user + ":" + pw + "@" + host + "/mail",
			"postgres://" + user + "@" + host + "/mail?password=" + pw,
			"host=" + host + " user=" + user + " password=" + pw,
			"host=" + host + " password='" + pw + "'",
			"postgres:" + pw + "@" + host,
			"postgres//" + user + ":" + pw + "@" + host,
		} {
			if got := redactDSN(dsn); strings.Contains(got, pw) {
				t.Fatalf("redactDSN(%q) = %q shows the password", dsn, got)
			}
		}
	})
}
