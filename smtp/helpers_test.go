package smtp

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

// received is one message the test server accepted.
type received struct {
	From  string
	To    []string
	Mail  gosmtp.MailOptions
	Rcpts []gosmtp.RcptOptions
	Data  []byte
	Authn string // user authenticated, if any
}

// backend is a go-smtp backend that records messages and can reject.
type backend struct {
	mu       sync.Mutex
	msgs     []received
	rcptErr  map[string]error // recipient → reply
	mailErr  error
	dataErr  error
	user     string // credentials accepted by AUTH
	pass     string
	token    string
	mechs    []string // AUTH mechanisms offered (when user != "")
	sessions int
	// hold, when set, runs after the body is read and before the reply:
	// a test blocks in it to make the server stall after the final dot.
	hold func(rcpts []string)
}

func (b *backend) NewSession(c *gosmtp.Conn) (gosmtp.Session, error) {
	b.mu.Lock()
	b.sessions++
	b.mu.Unlock()
	return &session{be: b}, nil
}

func (b *backend) messages() []received {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]received(nil), b.msgs...)
}

type session struct {
	be  *backend
	cur received
	who string
}

func (s *session) Reset()        { s.cur = received{} }
func (s *session) Logout() error { return nil }

func (s *session) Mail(from string, opts *gosmtp.MailOptions) error {
	if s.be.user != "" && s.who == "" {
		return &gosmtp.SMTPError{Code: 530, EnhancedCode: gosmtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	}
	if s.be.mailErr != nil {
		return s.be.mailErr
	}
	s.cur = received{From: from, Authn: s.who}
	if opts != nil {
		s.cur.Mail = *opts
	}
	return nil
}

func (s *session) Rcpt(to string, opts *gosmtp.RcptOptions) error {
	if err := s.be.rcptErr[to]; err != nil {
		return err
	}
	s.cur.To = append(s.cur.To, to)
	if opts != nil {
		s.cur.Rcpts = append(s.cur.Rcpts, *opts)
	}
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if s.be.hold != nil {
		s.be.hold(s.cur.To)
	}
	if s.be.dataErr != nil {
		return s.be.dataErr
	}
	s.cur.Data = b
	s.be.mu.Lock()
	s.be.msgs = append(s.be.msgs, s.cur)
	s.be.mu.Unlock()
	return nil
}

func (s *session) AuthMechanisms() []string {
	if s.be.user == "" {
		return nil
	}
	return s.be.mechs
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	ok := func(u string) { s.who = u }
	switch mech {
	case "PLAIN":
		return sasl.NewPlainServer(func(_, u, p string) error {
			if u != s.be.user || p != s.be.pass {
				return errBadCreds
			}
			ok(u)
			return nil
		}), nil
	case "LOGIN":
		return &loginServer{be: s.be, ok: ok}, nil
	case "CRAM-MD5":
		return &cramServer{be: s.be, ok: ok}, nil
	case "XOAUTH2":
		return &xoauth2Server{be: s.be, ok: ok}, nil
	}
	return nil, errors.New("unsupported")
}

// loginServer is the server side of AUTH LOGIN, with Office 365-like prompts.
type loginServer struct {
	be   *backend
	ok   func(string)
	step int
	user string
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	l.step++
	switch l.step {
	case 1:
		return []byte("Username:"), false, nil
	case 2:
		l.user = string(resp)
		return []byte("Password:"), false, nil
	}
	if l.user != l.be.user || string(resp) != l.be.pass {
		return nil, true, errBadCreds
	}
	l.ok(l.user)
	return nil, true, nil
}

// cramServer is the server side of CRAM-MD5.
type cramServer struct {
	be   *backend
	ok   func(string)
	chal string
}

func (c *cramServer) Next(resp []byte) ([]byte, bool, error) {
	if c.chal == "" {
		c.chal = "<1896.697170952@postoffice.example>"
		return []byte(c.chal), false, nil
	}
	m := hmac.New(md5.New, []byte(c.be.pass))
	m.Write([]byte(c.chal))
	if string(resp) != c.be.user+" "+hex.EncodeToString(m.Sum(nil)) {
		return nil, true, errBadCreds
	}
	c.ok(c.be.user)
	return nil, true, nil
}

// xoauth2Server is the server side of XOAUTH2.
type xoauth2Server struct {
	be     *backend
	ok     func(string)
	failed bool
}

func (x *xoauth2Server) Next(resp []byte) ([]byte, bool, error) {
	if x.failed {
		return nil, true, errBadCreds
	}
	want := "user=" + x.be.user + "\x01auth=Bearer " + x.be.token + "\x01\x01"
	if string(resp) != want {
		x.failed = true
		return []byte(`{"status":"401"}`), false, nil
	}
	x.ok(x.be.user)
	return nil, true, nil
}

// recordConn keeps a copy of everything read from the client.
type recordConn struct {
	net.Conn
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (r recordConn) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	r.mu.Lock()
	r.buf.Write(p[:n])
	r.mu.Unlock()
	return n, err
}

// filterConn drops EHLO keyword lines the test wants hidden, so that the
// real server appears not to offer them.
type filterConn struct {
	net.Conn
	hide []string
}

func (f filterConn) Write(p []byte) (int, error) {
	var out bytes.Buffer
	for _, line := range bytes.SplitAfter(p, []byte("\r\n")) {
		drop := false
		for _, h := range f.hide {
			if bytes.Equal(line, []byte("250-"+h+"\r\n")) {
				drop = true
			}
		}
		if !drop {
			out.Write(line)
		}
	}
	if _, err := f.Conn.Write(out.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// wrapListener applies recordConn and filterConn to accepted connections.
type wrapListener struct {
	net.Listener
	srv *testServer
}

func (l wrapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.srv.mu.Lock()
	buf := &bytes.Buffer{}
	l.srv.conns = append(l.srv.conns, buf)
	l.srv.mu.Unlock()
	c = recordConn{Conn: c, mu: &l.srv.mu, buf: buf}
	if len(l.srv.hide) > 0 {
		c = filterConn{Conn: c, hide: l.srv.hide}
	}
	if l.srv.wrap != nil {
		c = l.srv.wrap(c)
	}
	return c, nil
}

// testServer is a go-smtp server on a loopback listener.
type testServer struct {
	Addr  string
	Be    *backend
	Srv   *gosmtp.Server
	hide  []string
	wrap  func(net.Conn) net.Conn // outermost wrapper of accepted connections
	mu    sync.Mutex
	conns []*bytes.Buffer
}

// sessions returns how many connections the server has accepted.
func (s *testServer) sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// received returns what the server read on its i-th connection.
func (s *testServer) received(i int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns[i].String()
}

// startServer runs a go-smtp server; configure adjusts it before start.
// hide lists EHLO keywords to hide (e.g. "PIPELINING", "CHUNKING").
func startServer(t testing.TB, be *backend, hide []string, configure func(*gosmtp.Server)) *testServer {
	t.Helper()
	return startWrapped(t, be, hide, configure, nil)
}

// startWrapped is startServer with wrap applied to every accepted
// connection (nil: none), e.g. to make the real server hang up.
func startWrapped(t testing.TB, be *backend, hide []string, configure func(*gosmtp.Server), wrap func(net.Conn) net.Conn) *testServer {
	t.Helper()
	if be == nil {
		be = &backend{}
	}
	srv := gosmtp.NewServer(be)
	srv.Domain = "test.local"
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.AllowInsecureAuth = true
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	if configure != nil {
		configure(srv)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Addr: l.Addr().String(), Be: be, Srv: srv, hide: hide, wrap: wrap}
	go srv.Serve(wrapListener{Listener: l, srv: ts})
	t.Cleanup(func() { srv.Close() })
	return ts
}

// selfSigned makes a certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "outbox test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// writeCounter records each Write the client makes on its connection.
type writeCounter struct {
	mu     sync.Mutex
	writes []string
}

func (w *writeCounter) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return countConn{Conn: c, w: w}, nil
}

func (w *writeCounter) list() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.writes...)
}

type countConn struct {
	net.Conn
	w *writeCounter
}

func (c countConn) Write(p []byte) (int, error) {
	c.w.mu.Lock()
	c.w.writes = append(c.w.writes, string(p))
	c.w.mu.Unlock()
	return c.Conn.Write(p)
}

// scripted runs a fault-injecting server: handle gets each connection.
func scripted(t testing.TB, handle func(c net.Conn, r *bufio.Reader)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				go func() { <-done; c.Close() }()
				handle(c, bufio.NewReader(c))
			}()
		}
	}()
	t.Cleanup(func() { close(done); l.Close(); wg.Wait() })
	return l.Addr().String()
}

// expectLine reads one line and returns it without CRLF.
func expectLine(r *bufio.Reader) string {
	l, _ := r.ReadString('\n')
	return strings.TrimRight(l, "\r\n")
}

// ctxT returns a context that ends with the test.
func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// testTranscript collects transcript lines.
type testTranscript struct {
	mu    sync.Mutex
	lines []string
}

func (tt *testTranscript) hook(d Direction, l string) {
	tt.mu.Lock()
	tt.lines = append(tt.lines, d.String()+": "+l)
	tt.mu.Unlock()
}

func (tt *testTranscript) text() string {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	return strings.Join(tt.lines, "\n")
}

var errBadCreds = &gosmtp.SMTPError{Code: 535, EnhancedCode: gosmtp.EnhancedCode{5, 7, 8}, Message: "bad credentials"}
