package main

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/outbox-mail/outbox/internal/health"
	"github.com/outbox-mail/outbox/internal/throttle"
	"github.com/outbox-mail/outbox/internal/tlsfiles"
	"github.com/outbox-mail/outbox/queue"
	smtpsubmit "github.com/outbox-mail/outbox/submission"
)

// hardened is what a running service holds for its hardening: the shared
// auth throttle, readiness, the SQLite lock, connection caps and the
// certificates.
type hardened struct {
	throttle           *throttle.Throttle
	health             *health.Checker
	lock               *os.File
	fdLimit            uint64
	smtpCap, httpCap   int
	smtpCert, httpCert *tlsfiles.Files // operator files, reloadable
	selfSigned         string          // fingerprint of the self-signed STARTTLS certificate
	selfSignedNew      bool
}

// prepare reads the secret files and checks the hardening flags, before
// anything is opened.
func (c *serveConfig) prepare() error {
	if err := c.loadSecretFiles(); err != nil {
		return err
	}
	return c.hard.check()
}

// sqlitePath is the database path of a sqlite: DSN, or "".
func sqlitePath(db string) string {
	p, ok := strings.CutPrefix(db, "sqlite:")
	if !ok {
		return ""
	}
	return p
}

// dataDir is where the daemon keeps its own files (the self-signed
// certificate): the SQLite database's directory, or ./outbox-data for a
// PostgreSQL store.
func dataDir(db string) string {
	if p := sqlitePath(db); p != "" {
		return filepath.Dir(p)
	}
	return "outbox-data"
}

// harden takes the SQLite lock and sets the connection caps; it runs
// before the store is opened.
func (d *service) harden() error {
	h := &hardened{throttle: throttle.New(throttle.Config{Logger: d.log})}
	d.hard = h
	if p := sqlitePath(d.cfg.db); p != "" {
		f, err := lockSQLite(p)
		if err != nil {
			return err
		}
		h.lock = f
	}
	h.fdLimit = fileLimit()
	var err error
	h.smtpCap, h.httpCap, err = connectionCaps(h.fdLimit, d.cfg.hard.smtpMaxConns, d.cfg.hard.httpMaxConns, d.cfg.smtpAddr != "off")
	return err
}

// newHealth builds the readiness checker over the open store.
func (d *service) newHealth() {
	hc := health.Config{Logger: d.log}
	if p, ok := d.store.(health.Prober); ok {
		hc.Probe = p
	}
	if p := sqlitePath(d.cfg.db); p != "" {
		hc.DiskPath, hc.MinFree = filepath.Dir(p), int64(d.cfg.hard.minFreeSpace)
	}
	d.hard.health = health.New(hc)
}

// release gives back the lock; the store is closed by then.
func (h *hardened) release() {
	if h == nil {
		return
	}
	if h.health != nil {
		h.health.Stop()
	}
	h.throttle.Flush()
	if h.lock != nil {
		h.lock.Close()
	}
}

// smtpTLS is the STARTTLS configuration: the operator's files, reloadable,
// or a self-signed certificate kept in the data directory so that clients
// can pin it across restarts.
func (d *service) smtpTLS() (*tls.Config, error) {
	cfg := d.cfg
	if cfg.tlsCert != "" || cfg.tlsKey != "" {
		f, err := tlsfiles.Load(cfg.tlsCert, cfg.tlsKey)
		if err != nil {
			return nil, usagef("--tls-cert/--tls-key: %v", err)
		}
		d.hard.smtpCert = f
		return f.Config(), nil
	}
	dir := filepath.Join(dataDir(cfg.db), "tls")
	cert, created, err := tlsfiles.Persistent(dir, certHosts(cfg)...)
	if err != nil {
		return nil, usagef("self-signed certificate in %s: %v", dir, err)
	}
	d.hard.selfSigned, d.hard.selfSignedNew = tlsfiles.Fingerprint(cert.Certificate[0]), created
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// certHosts are the names the self-signed certificate covers: --hostname,
// localhost, the loopback addresses and the bind addresses (every
// interface address for a wildcard bind).
func certHosts(cfg *serveConfig) []string {
	hosts := []string{hostname(cfg), "localhost", "127.0.0.1", "::1"}
	seen := map[string]bool{}
	for _, h := range hosts {
		seen[h] = true
	}
	add := func(h string) {
		if h != "" && !seen[h] {
			seen[h] = true
			hosts = append(hosts, h)
		}
	}
	for _, addr := range []string{cfg.smtpAddr, cfg.httpAddr} {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			continue
		}
		ip := net.ParseIP(host)
		if host != "" && (ip == nil || !ip.IsUnspecified()) {
			add(host)
			continue
		}
		if addrs, err := net.InterfaceAddrs(); err == nil {
			for _, a := range addrs {
				if n, ok := a.(*net.IPNet); ok && !n.IP.IsLinkLocalUnicast() {
					add(n.IP.String())
				}
			}
		}
	}
	return hosts
}

// httpListener wraps the HTTP listener in the connection cap and, with
// --http-tls-cert, in TLS.
func (d *service) httpListener(l net.Listener) (net.Listener, error) {
	ll := &limitListener{Listener: l, max: int64(d.hard.httpCap), log: d.log}
	if d.cfg.hard.httpTLSCert == "" {
		return ll, nil
	}
	f, err := tlsfiles.Load(d.cfg.hard.httpTLSCert, d.cfg.hard.httpTLSKey)
	if err != nil {
		return nil, usagef("--http-tls-cert/--http-tls-key: %v", err)
	}
	d.hard.httpCert = f
	ll.tls = true
	return tls.NewListener(ll, f.Config()), nil
}

// healthEnqueuer passes submissions to the outbox client and tells the
// readiness checker whether the store committed them. A failure of the
// client's own stream (a dropped connection, a message too large) is the
// client's, not the store's.
type healthEnqueuer struct {
	next   smtpsubmit.Enqueuer
	health *health.Checker
}

func (e healthEnqueuer) EnqueueRaw(ctx context.Context, m queue.NewMessage) (string, error) {
	body := &bodyErr{r: m.Body}
	m.Body = body
	id, err := e.next.EnqueueRaw(ctx, m)
	switch {
	case err == nil:
		e.health.StoreSucceeded()
	case body.err == nil && !errors.Is(err, queue.ErrInvalid) && !errors.Is(err, context.Canceled):
		e.health.StoreFailed(err)
	}
	return id, err
}

// bodyErr remembers whether reading the client's stream failed.
type bodyErr struct {
	r   io.Reader
	err error
}

func (b *bodyErr) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	return n, err
}

// smtpUsers parses every --smtp-user into passwords and sender patterns.
// A user given twice must have the same password each time; its patterns
// add up.
func smtpUsers(list []string) (map[string]string, map[string][]string, error) {
	users := make(map[string]string, len(list))
	senders := map[string][]string{}
	for _, u := range list {
		name, pass, from, err := parseSMTPUser(u)
		if err != nil {
			return nil, nil, usagef("%v", err)
		}
		if old, ok := users[name]; ok && old != pass {
			return nil, nil, usagef("--smtp-user %s is given twice with different passwords", name)
		}
		users[name] = pass
		if from != "" {
			senders[name] = append(senders[name], from)
		}
	}
	return users, senders, nil
}

// announceHardening logs the limits in force and the certificate clients
// may pin.
func (d *service) announceHardening() {
	h := d.hard
	d.log.Info("connection limits", "open_files", h.fdLimit, "smtp_max", h.smtpCap,
		"smtp_max_per_ip", d.cfg.hard.smtpMaxConnsPerIP, "http_max", h.httpCap)
	if h.selfSigned != "" && d.smtpServer != nil {
		d.log.Info("STARTTLS uses a self-signed certificate kept in the data directory; clients may pin it",
			"sha256", h.selfSigned, "new", h.selfSignedNew, "dir", filepath.Join(dataDir(d.cfg.db), "tls"))
	}
	if h.httpCert != nil {
		d.log.Info("HTTP is served over TLS", "cert", d.cfg.hard.httpTLSCert)
	}
	if len(d.cfg.hard.smtpProxyProtocol) > 0 {
		d.log.Info("SMTP connections from these proxies must start with a PROXY header", "proxies", strings.Join(d.cfg.hard.smtpProxyProtocol, ","))
	}
}
