package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/outbox-mail/outbox/api"
	"github.com/outbox-mail/outbox/bounce"
	"github.com/outbox-mail/outbox/delivery"
	"github.com/outbox-mail/outbox/dkim"
	"github.com/outbox-mail/outbox/feedback"
	smtpsubmit "github.com/outbox-mail/outbox/submission"
	"github.com/outbox-mail/outbox/unsubscribe"
	"github.com/outbox-mail/outbox/webhook"
)

// deliverabilityFlags are 'outbox serve”s DKIM, bounce and unsubscribe
// settings.
type deliverabilityFlags struct {
	dkim                  listFlag // DOMAIN:SELECTOR:KEYFILE
	bounceDomain          string
	bounceSecretFile      string
	publicURL             string
	unsubscribeSecretFile string
}

func (f *deliverabilityFlags) register(fs *flag.FlagSet) {
	fs.Var(&f.dkim, "dkim", "`DOMAIN:SELECTOR:KEYFILE`: DKIM-sign mail From DOMAIN (or a subdomain) with the PEM key in KEYFILE, published at SELECTOR._domainkey.DOMAIN (repeatable; 'outbox dkim keygen' makes one)")
	fs.StringVar(&f.bounceDomain, "bounce-domain", "", "`DOMAIN` of the per-recipient return paths bounces+TOKEN@DOMAIN; its MX must point at this daemon's SMTP listener, which takes mail for it without AUTH")
	fs.StringVar(&f.bounceSecretFile, "bounce-secret-file", "", "`FILE` of the secret that signs return paths (first line signs, every line verifies; default: one generated in the data directory)")
	fs.StringVar(&f.publicURL, "public-url", "", "the `URL` this daemon's HTTP port is reached at from the internet, e.g. https://mail.example.com: enables one-click unsubscribe links (URL/u/TOKEN)")
	fs.StringVar(&f.unsubscribeSecretFile, "unsubscribe-secret-file", "", "`FILE` of the secret that signs unsubscribe links (default: the bounce secret)")
}

// deliverability is what 'outbox serve' adds to the mail it sends and
// takes back: the engine's settings, and the handler of bounces and
// unsubscribes (nil when neither is on).
type deliverability struct {
	engine   delivery.Deliverability
	feedback *feedback.Handler
}

// secretName is the generated secret's file in the data directory.
const secretName = "feedback.secret"

// buildDeliverability loads the DKIM keys and the secrets, refusing at
// start what would fail later, and makes the feedback handler.
func (d *service) buildDeliverability(hooks *webhook.Dispatcher) (*deliverability, error) {
	f := &d.cfg.deliver
	out := &deliverability{}
	var err error
	if out.engine.DKIM, err = loadDKIM(f.dkim); err != nil {
		return nil, err
	}
	if f.bounceDomain == "" && f.publicURL == "" {
		if f.bounceSecretFile != "" || f.unsubscribeSecretFile != "" {
			return nil, usagef("--bounce-secret-file and --unsubscribe-secret-file need --bounce-domain or --public-url")
		}
		return out, nil
	}
	bounceSecrets, err := d.secrets("bounce-secret-file", f.bounceSecretFile)
	if err != nil {
		return nil, err
	}
	if f.bounceDomain != "" {
		if out.engine.VERP, err = bounce.NewVERP(f.bounceDomain, bounceSecrets...); err != nil {
			return nil, usagef("--bounce-domain: %v", err)
		}
	}
	var tokens *unsubscribe.Tokens
	if f.publicURL != "" {
		base, err := checkPublicURL(f.publicURL)
		if err != nil {
			return nil, err
		}
		secrets := bounceSecrets
		if f.unsubscribeSecretFile != "" {
			if secrets, err = d.secrets("unsubscribe-secret-file", f.unsubscribeSecretFile); err != nil {
				return nil, err
			}
		}
		if tokens, err = unsubscribe.New(secrets...); err != nil {
			return nil, usagef("--unsubscribe-secret-file: %v", err)
		}
		out.engine.Unsubscribe = &delivery.UnsubscribeLinks{Tokens: tokens, BaseURL: base, Mailto: out.engine.VERP != nil}
	}
	out.feedback, err = feedback.New(feedback.Config{Store: d.store, VERP: out.engine.VERP, Tokens: tokens,
		Webhooks: hooks, Logger: d.log})
	return out, err
}

// loadDKIM reads the --dkim keys; nil without any.
func loadDKIM(specs []string) (*dkim.Signer, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	keys := make([]dkim.Key, 0, len(specs))
	for i, s := range specs {
		k, err := dkim.ParseSpec(s)
		if err != nil {
			return nil, usagef("--dkim #%d (%s): %v", i+1, s, err)
		}
		keys = append(keys, k)
	}
	s, err := dkim.NewSigner(keys...)
	if err != nil {
		return nil, usagef("--dkim: %v", err)
	}
	return s, nil
}

// checkPublicURL checks --public-url and returns it without a trailing
// slash.
func checkPublicURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" {
		return "", usagef("--public-url %q: want an absolute https:// URL without user, query or fragment, e.g. https://mail.example.com", raw)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// secrets reads a secret file (one secret per line: the first signs,
// every one verifies), or, without one, the secret kept in the data
// directory, made on first use.
func (d *service) secrets(flagName, file string) ([][]byte, error) {
	if file == "" {
		file = filepath.Join(dataDir(d.cfg.db), secretName)
		created, err := ensureSecret(file)
		if err != nil {
			return nil, fmt.Errorf("making the bounce and unsubscribe secret: %w", err)
		}
		if created {
			d.log.Info("generated the secret of return paths and unsubscribe links", "file", file)
		}
		if sqlitePath(d.cfg.db) == "" {
			d.log.Warn("the bounce and unsubscribe secret is this node's own: give every node sharing the database the same --bounce-secret-file, or a bounce sent through one may be refused by another", "file", file)
		}
		flagName = "bounce-secret-file (generated)"
	}
	lines, err := readSecretFile(flagName, file)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(lines))
	for i, l := range lines {
		if len(l) < 16 {
			return nil, usagef("--%s %s: line %d is shorter than 16 characters", flagName, file, i+1)
		}
		out[i] = []byte(l)
	}
	return out, nil
}

// ensureSecret writes a new random secret (mode 0600) to file unless it
// exists, and reports whether it made one.
func ensureSecret(file string) (bool, error) {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return false, err
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return false, err
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, finishKeyFile(f, file, []byte("# outbox: the secret of VERP return paths and unsubscribe links; keep it, and keep it private\n"+
		hex.EncodeToString(b[:])+"\n"))
}

// announceDeliverability says at start-up what is signed, where bounces
// come back and where unsubscribe links point.
func (d *service) announceDeliverability() {
	f := &d.cfg.deliver
	if len(f.dkim) > 0 {
		var keys []string
		for _, s := range f.dkim {
			domain, rest, _ := strings.Cut(s, ":")
			selector, _, _ := strings.Cut(rest, ":")
			keys = append(keys, selector+"._domainkey."+domain)
		}
		d.log.Info("DKIM signing", "keys", strings.Join(keys, ", "))
	}
	if f.bounceDomain != "" {
		d.log.Info("bounces come back to bounces+TOKEN@"+f.bounceDomain+", taken without AUTH on the SMTP listener", "bounce_domain", f.bounceDomain)
		if d.smtpServer == nil {
			d.log.Warn("--bounce-domain is set but --smtp is off: no bounce can be received")
		}
	}
	if f.publicURL != "" {
		level := slog.LevelInfo
		if strings.HasPrefix(f.publicURL, "http:") {
			level = slog.LevelWarn // RFC 8058 asks for https
		}
		d.log.Log(nil, level, "one-click unsubscribe links point at "+strings.TrimRight(f.publicURL, "/")+"/u/…") //nolint:staticcheck // no context at start-up
	}
}

// withUnsubscribe serves the one-click links at /u/ beside next, outside
// the loopback-host guard: they are for the public, and a token is the
// only authority they take.
func (d *service) withUnsubscribe(next http.Handler) http.Handler {
	if d.deliver.feedback == nil || d.deliver.engine.Unsubscribe == nil {
		return next
	}
	u := api.NewUnsubscribe(d.deliver.feedback, d.log)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/u/") {
			u.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// inbound is the SMTP listener's handler of the bounce domain, nil
// without one.
func (d *service) inbound() smtpsubmit.Inbound {
	if d.deliver.feedback == nil || d.deliver.engine.VERP == nil {
		return nil
	}
	return d.deliver.feedback
}
