package delivery_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/outbox-mail/outbox/delivery"
	"github.com/outbox-mail/outbox/internal/dnstest"
	"github.com/outbox-mail/outbox/internal/smtpsink"
	"github.com/outbox-mail/outbox/route"
	"github.com/outbox-mail/outbox/smtp"
)

// hostOpts script one test mail host.
type hostOpts struct {
	// Mail answers MAIL FROM; nil accepts.
	Mail func() error
	// Rcpt answers RCPT TO; nil accepts.
	Rcpt func(to string) error
	// Hang, when set, keeps every message's final reply back until it is
	// closed: a host that never answers after the final dot.
	Hang chan struct{}
	// CloseAfterOne closes each connection silently right after the reply
	// to its first message.
	CloseAfterOne bool
	// Greet421 refuses every connection with a 421 greeting.
	Greet421 bool
	// TLS offers STARTTLS with a self-signed certificate.
	TLS bool
	// Delay is slept before the final reply.
	Delay time.Duration
	// Active, when set, counts sessions open at once across hosts; Txn
	// counts transactions in progress (MAIL to the end of the message).
	Active, Txn *gauge
}

// gauge counts things open at once and remembers the most.
type gauge struct{ n, peak atomic.Int64 }

func (g *gauge) inc() {
	n := g.n.Add(1)
	for {
		p := g.peak.Load()
		if n <= p || g.peak.CompareAndSwap(p, n) {
			return
		}
	}
}
func (g *gauge) dec()        { g.n.Add(-1) }
func (g *gauge) Peak() int64 { return g.peak.Load() }

// got is one message a host accepted, with its ESMTP parameters.
type got struct {
	From  string
	To    []string
	Data  []byte
	Mail  gosmtp.MailOptions
	Rcpts []gosmtp.RcptOptions
	At    time.Time
	TLS   bool // the message came over TLS
}

// mailHost is a real go-smtp server on 127.0.0.N:port.
type mailHost struct {
	addr     string
	opts     hostOpts
	srv      *gosmtp.Server
	active   gauge
	sessions atomic.Int64
	mails    atomic.Int64

	mu   sync.Mutex
	msgs []got
}

func (h *mailHost) Received() []got {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]got(nil), h.msgs...)
}

// startHosts runs go-smtp servers on 127.0.0.2, 127.0.0.3, … sharing one
// port (what --mx-port points at); opts[i] scripts host i. A nil entry
// leaves that address without a listener: a host that is down.
func startHosts(t testing.TB, opts ...*hostOpts) (int, []*mailHost) {
	t.Helper()
	for range 30 {
		port, hosts, err := tryHosts(opts)
		if err == nil {
			t.Cleanup(func() {
				for _, h := range hosts {
					if h.srv != nil {
						h.srv.Close()
					}
				}
			})
			return port, hosts
		}
	}
	t.Fatal("no port free on every 127.0.0.x address")
	return 0, nil
}

func tryHosts(opts []*hostOpts) (int, []*mailHost, error) {
	probe, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		return 0, nil, err
	}
	port := probe.Addr().(*net.TCPAddr).Port
	probe.Close()
	var hosts []*mailHost
	var ls []net.Listener
	for i, o := range opts {
		h := &mailHost{addr: fmt.Sprintf("127.0.0.%d:%d", i+2, port)}
		hosts = append(hosts, h)
		if o == nil {
			continue
		}
		l, err := net.Listen("tcp", h.addr)
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			return 0, nil, err
		}
		ls = append(ls, l)
		h.opts = *o
		h.serve(l)
	}
	return port, hosts, nil
}

func (h *mailHost) serve(l net.Listener) {
	srv := gosmtp.NewServer(hostBackend{h})
	srv.Domain = "mx.test"
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.EnableDSN = true
	srv.EnableSMTPUTF8 = true
	srv.ReadTimeout = time.Minute
	srv.WriteTimeout = time.Minute
	if h.opts.TLS {
		srv.TLSConfig = selfSigned()
	}
	h.srv = srv
	go srv.Serve(&hostListener{Listener: l, h: h}) //nolint:errcheck
}

// hostListener counts sessions and applies the connection-level scripts.
type hostListener struct {
	net.Listener
	h *mailHost
}

func (l *hostListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.h.sessions.Add(1)
		if l.h.opts.Greet421 {
			// A host at its connection limit, as Postfix's postscreen
			// answers one.
			c.Write([]byte("421 4.3.2 mx.test too busy, try another host\r\n"))
			c.Close()
			continue
		}
		hc := &hostConn{Conn: c, h: l.h}
		l.h.active.inc()
		if l.h.opts.Active != nil {
			l.h.opts.Active.inc()
		}
		return hc, nil
	}
}

// hostConn closes after the reply to the first message when told to.
type hostConn struct {
	net.Conn
	h         *mailHost
	closeNext atomic.Bool
	closed    atomic.Bool
}

func (c *hostConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if c.closeNext.Load() && bytes.HasPrefix(b, []byte("250 ")) {
		c.Close()
	}
	return n, err
}

func (c *hostConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.h.active.dec()
		if c.h.opts.Active != nil {
			c.h.opts.Active.dec()
		}
	}
	return c.Conn.Close()
}

type hostBackend struct{ h *mailHost }

func (b hostBackend) NewSession(c *gosmtp.Conn) (gosmtp.Session, error) {
	hc, _ := c.Conn().(*hostConn)
	return &hostSession{h: b.h, conn: hc, c: c}, nil
}

type hostSession struct {
	c     *gosmtp.Conn
	h     *mailHost
	conn  *hostConn
	cur   got
	inTxn bool
}

func (s *hostSession) endTxn() {
	if s.inTxn && s.h.opts.Txn != nil {
		s.h.opts.Txn.dec()
	}
	s.inTxn = false
}

func (s *hostSession) Mail(from string, o *gosmtp.MailOptions) error {
	s.h.mails.Add(1)
	if f := s.h.opts.Mail; f != nil {
		if err := f(); err != nil {
			return err
		}
	}
	s.cur = got{From: from}
	if s.h.opts.Txn != nil && !s.inTxn {
		s.inTxn = true
		s.h.opts.Txn.inc()
	}
	if o != nil {
		s.cur.Mail = *o
	}
	return nil
}

func (s *hostSession) Rcpt(to string, o *gosmtp.RcptOptions) error {
	if f := s.h.opts.Rcpt; f != nil {
		if err := f(to); err != nil {
			return err
		}
	}
	s.cur.To = append(s.cur.To, to)
	if o != nil {
		s.cur.Rcpts = append(s.cur.Rcpts, *o)
	}
	return nil
}

func (s *hostSession) Data(r io.Reader) error {
	// The transaction is over once the reply is decided: go-smtp calls
	// Reset only after writing it, by when the client may already have
	// started its next delivery elsewhere.
	defer s.endTxn()
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if s.h.opts.Hang != nil {
		<-s.h.opts.Hang
		return errors.New("hung")
	}
	if s.h.opts.Delay > 0 {
		time.Sleep(s.h.opts.Delay)
	}
	s.cur.Data, s.cur.At = data, time.Now()
	_, s.cur.TLS = s.c.TLSConnectionState()
	s.h.mu.Lock()
	s.h.msgs = append(s.h.msgs, s.cur)
	s.h.mu.Unlock()
	if s.h.opts.CloseAfterOne && s.conn != nil {
		s.conn.closeNext.Store(true)
	}
	return nil
}

func (s *hostSession) Reset()        { s.cur = got{}; s.endTxn() }
func (s *hostSession) Logout() error { s.endTxn(); return nil }

// world is a DNS server and the resolver that asks it.
type world struct {
	dns      *dnstest.Server
	resolver *route.Resolver
	port     int
}

func newWorld(t testing.TB, port int) *world {
	t.Helper()
	srv, err := dnstest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	r, err := route.NewResolver(route.ResolverOptions{Server: srv.Addr(), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return &world{dns: srv, resolver: r, port: port}
}

// host names hosts[i] in DNS as name, at its 127.0.0.x address.
func (w *world) host(name string, h *mailHost) {
	ip, _, _ := net.SplitHostPort(h.addr)
	w.dns.SetAddrs(name, ip)
}

// mx gives domain MX records: pairs of preference and host name.
func (w *world) mx(domain string, prefHost ...any) {
	var mx []dnstest.MX
	for i := 0; i+1 < len(prefHost); i += 2 {
		mx = append(mx, dnstest.MX{Pref: uint16(prefHost[i].(int)), Host: prefHost[i+1].(string)})
	}
	w.dns.SetMX(domain, mx...)
}

// routing is direct MX delivery by default, plus routes.
func (w *world) routing(t testing.TB, routes ...route.Route) *delivery.Routing {
	t.Helper()
	tab, err := route.NewTable(route.Route{Target: route.Target{Kind: route.MX}}, routes)
	if err != nil {
		t.Fatal(err)
	}
	return &delivery.Routing{Table: tab, Resolver: w.resolver, MXPort: w.port,
		SMTP: &smtp.Options{LocalName: "outbox.test", Timeouts: smtp.Timeouts{Dial: 10 * time.Second}}}
}

func mustRoute(t testing.TB, domain, target string, maxConns int, rate string) route.Route {
	t.Helper()
	r, err := route.NewRoute(domain, target, maxConns, rate)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func portOf(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var _ = strings.Contains
var _ = context.Background

var (
	certOnce sync.Once
	certTLS  *tls.Config
)

// selfSigned is a TLS config with a certificate nobody can verify.
func selfSigned() *tls.Config {
	certOnce.Do(func() {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "self-signed.invalid"},
			DNSNames: []string{"self-signed.invalid"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		certTLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	})
	return certTLS
}

var smtpErr451 = gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 2, 1}, Message: "try later"}

func smtpsinkOpts() smtpsink.Options { return smtpsink.Options{} }
