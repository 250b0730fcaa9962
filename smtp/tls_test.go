package smtp

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

// testCA is a private certificate authority and a server certificate for
// 127.0.0.1 it signed; PEM is the CA certificate's file for ca=.
type testCA struct {
	Leaf tls.Certificate
	PEM  string
}

func newTestCA(t *testing.T) testCA {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(10), Subject: pkix.Name{CommonName: "outbox test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(11), Subject: pkix.Name{CommonName: "relay.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"mx1.relay.test"}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return testCA{Leaf: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, PEM: path}
}

// tlsServer is a go-smtp server offering STARTTLS with cfg and AUTH PLAIN
// and CRAM-MD5 for u / pw, refusing AUTH in clear text.
func tlsServer(t *testing.T, cfg *tls.Config) *testServer {
	be := &backend{user: "u", pass: "pw", mechs: []string{"CRAM-MD5", "PLAIN"}}
	return startServer(t, be, nil, func(s *gosmtp.Server) {
		s.TLSConfig = cfg
		s.AllowInsecureAuth = false
	})
}

// startImplicitTLS runs a go-smtp server behind a TLS listener, recording
// what it reads after decryption.
func startImplicitTLS(t *testing.T, be *backend, cert tls.Certificate) *testServer {
	t.Helper()
	srv := gosmtp.NewServer(be)
	srv.Domain = "tls.test"
	srv.AllowInsecureAuth = true // it is TLS, but go-smtp cannot see through the recording wrapper
	srv.ErrorLog = log.New(io.Discard, "", 0)
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Addr: l.Addr().String(), Be: be, Srv: srv}
	go srv.Serve(wrapListener{Listener: l, srv: ts})
	t.Cleanup(func() { srv.Close() })
	return ts
}

// relayDial parses url (with ADDR replaced) and dials it, sending one message.
func relayDial(t *testing.T, url, addr string) (*SendResult, string, error) {
	t.Helper()
	r, err := ParseRelayURL(strings.Replace(url, "ADDR", addr, 1))
	if err != nil {
		t.Fatal(err)
	}
	var tr testTranscript
	o := r.Options(&Options{Transcript: tr.hook})
	c, err := Dial(ctxT(t), r.Addr(), o)
	if err != nil {
		return nil, tr.text(), err
	}
	res, err := c.SendAndQuit(ctxT(t), &Envelope{From: "a@x.test", Recipients: []string{"b@y.test"}}, strings.NewReader("hi"))
	return res, tr.text(), err
}

func TestRelayTrustsNamedCA(t *testing.T) {
	ca := newTestCA(t)
	ts := tlsServer(t, &tls.Config{Certificates: []tls.Certificate{ca.Leaf}})
	res, tr, err := relayDial(t, "smtp://u:pw@ADDR?ca="+ca.PEM, ts.Addr)
	if err != nil {
		t.Fatalf("%v\n%s", err, tr)
	}
	if !res.TLS || !res.TLSVerified || !strings.Contains(tr, "*: TLS 1.3, certificate verified for 127.0.0.1") {
		t.Fatalf("TLS %v verified %v\n%s", res.TLS, res.TLSVerified, tr)
	}
	// PLAIN inside TLS, though CRAM-MD5 is offered first.
	if !strings.Contains(tr, "C: AUTH PLAIN ***") || strings.Contains(tr, "pw") {
		t.Fatalf("transcript:\n%s", tr)
	}
	if m := ts.Be.messages(); len(m) != 1 || m[0].Authn != "u" {
		t.Fatalf("messages %+v", m)
	}

	// Without the CA, the required policy (credentials) defers: 4.7.5,
	// decided locally, and the password never leaves.
	_, tr, err = relayDial(t, "smtp://u:pw@ADDR", ts.Addr)
	var e *Error
	if !errors.As(err, &e) || e.Code != 454 || e.EnhancedCode != (EnhancedCode{4, 7, 5}) || !e.Local || !e.Temporary() ||
		!errors.Is(err, ErrConnection) || !strings.Contains(err.Error(), "certificate not verified") {
		t.Fatalf("unknown CA under the required policy: %v", err)
	}
	if strings.Contains(ts.received(1), "AUTH") || strings.Contains(tr, "AUTH") {
		t.Fatalf("credentials went out after a failed verification:\n%s", tr)
	}
}

func TestRelayTLSVerifyFalse(t *testing.T) {
	ca := newTestCA(t)
	ts := tlsServer(t, &tls.Config{Certificates: []tls.Certificate{ca.Leaf}})
	r, err := ParseRelayURL("smtp://u:pw@" + ts.Addr + "?tls_verify=false")
	if err != nil || !r.InsecureSkipVerify {
		t.Fatalf("%+v %v", r, err)
	}
	res, tr, err := relayDial(t, "smtp://u:pw@ADDR?tls_verify=false", ts.Addr)
	if err != nil {
		t.Fatal(err)
	}
	if !res.TLS || res.TLSVerified || !strings.Contains(tr, "*: TLS certificate not verified") || !strings.Contains(tr, "tls_verify=false") {
		t.Fatalf("TLS %v verified %v\n%s", res.TLS, res.TLSVerified, tr)
	}
	if len(ts.Be.messages()) != 1 {
		t.Fatal("not delivered")
	}
}

// TestOpportunisticTLS: without credentials STARTTLS is opportunistic
// (RFC 7435): an unverifiable certificate still gets encryption, a known
// one is reported verified, and a handshake that fails falls back to a
// new connection in plain text, once.
func TestOpportunisticTLS(t *testing.T) {
	ca := newTestCA(t)
	ts := startServer(t, nil, nil, func(s *gosmtp.Server) {
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{ca.Leaf}}
	})
	res, tr, err := relayDial(t, "smtp://ADDR?starttls=opportunistic", ts.Addr)
	if err != nil || !res.TLS || res.TLSVerified || !strings.Contains(tr, "opportunistic TLS goes on encrypted") {
		t.Fatalf("unverifiable: %v TLS %v verified %v\n%s", err, res != nil && res.TLS, res != nil && res.TLSVerified, tr)
	}
	res, _, err = relayDial(t, "smtp://ADDR?ca="+ca.PEM, ts.Addr) // default policy: opportunistic
	if err != nil || !res.TLS || !res.TLSVerified {
		t.Fatalf("known CA: %v %+v", err, res)
	}
	if len(ts.Be.messages()) != 2 {
		t.Fatal("not delivered")
	}

	broken := startServer(t, nil, nil, func(s *gosmtp.Server) {
		s.TLSConfig = &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return nil, errors.New("no usable certificate")
		}}
	})
	res, tr, err = relayDial(t, "smtp://ADDR", broken.Addr)
	if err != nil || res.TLS || !strings.Contains(tr, "TLS handshake failed; connecting again without STARTTLS") {
		t.Fatalf("fallback: %v\n%s", err, tr)
	}
	if n := broken.sessions(); n != 2 || !strings.Contains(broken.received(0), "STARTTLS") || strings.Contains(broken.received(1), "STARTTLS") {
		t.Fatalf("%d connections; second: %q", n, broken.received(1))
	}
	if len(broken.Be.messages()) != 1 {
		t.Fatal("not delivered in plain text")
	}
	// Required: no fallback to plain text.
	_, _, err = relayDial(t, "smtp://ADDR?starttls=required", broken.Addr)
	if ce := wantConnErr(t, err, "TLS handshake"); ce == nil || broken.sessions() != 3 {
		t.Fatalf("required policy fell back: %v", err)
	}
}

// TestAuthOutsideTLS: without TLS only CRAM-MD5, which keeps the password
// off the wire, is used unless insecure_auth allows the others; a forced
// mechanism from the URL is used as asked.
func TestAuthOutsideTLS(t *testing.T) {
	be := &backend{user: "u", pass: "sëcret", mechs: []string{"PLAIN", "LOGIN", "CRAM-MD5"}}
	ts := startServer(t, be, nil, nil)
	for _, tc := range []struct{ url, want string }{
		{"smtp://u:s%C3%ABcret@ADDR?starttls=off", "C: AUTH CRAM-MD5"},
		{"smtp://u:s%C3%ABcret@ADDR?starttls=off&auth=cram-md5", "C: AUTH CRAM-MD5"},
		{"smtp://u:s%C3%ABcret@ADDR?starttls=off&auth=login&insecure_auth=true", "C: AUTH LOGIN"},
		{"smtp://u:s%C3%ABcret@ADDR?starttls=off&auth=plain&insecure_auth=true", "C: AUTH PLAIN ***"},
	} {
		_, tr, err := relayDial(t, tc.url, ts.Addr)
		if err != nil || !strings.Contains(tr, tc.want) || strings.Contains(tr, "sëcret") {
			t.Fatalf("%s: %v\n%s", tc.url, err, tr)
		}
	}
	n := ts.sessions()
	_, _, err := relayDial(t, "smtp://u:s%C3%ABcret@ADDR?starttls=off&auth=plain", ts.Addr)
	var e *Error
	if !errors.As(err, &e) || !e.Local || !strings.Contains(err.Error(), "refusing to send credentials without TLS") {
		t.Fatalf("forced PLAIN in clear text: %v", err)
	}
	if got := ts.received(n); strings.Contains(got, "AUTH") {
		t.Fatalf("AUTH sent in clear text: %q", got)
	}
	// XOAUTH2 from the URL: the password is the token.
	be2 := &backend{user: "u", token: "tok123", mechs: []string{"XOAUTH2"}}
	ts2 := startServer(t, be2, nil, nil)
	_, tr, err := relayDial(t, "smtp://u:tok123@ADDR?starttls=off&insecure_auth=true&auth=xoauth2", ts2.Addr)
	if err != nil || !strings.Contains(tr, "C: AUTH XOAUTH2 ***") || strings.Contains(tr, "tok123") {
		t.Fatalf("xoauth2: %v\n%s", err, tr)
	}
}

// TestQuitAfterFailedSetup: every session whose setup fails after the
// greeting ends with QUIT, and the server sees it.
func TestQuitAfterFailedSetup(t *testing.T) {
	ca := newTestCA(t)
	be := &backend{user: "u", pass: "right", mechs: []string{"PLAIN"}}
	plain := startServer(t, be, nil, nil)
	tlsSrv := startImplicitTLS(t, &backend{user: "u", pass: "right", mechs: []string{"PLAIN"}}, ca.Leaf)
	cases := []struct {
		name, url string
		srv       *testServer
		code      int
	}{
		{"AUTH 535", "smtp://u:wrong@ADDR?starttls=off&insecure_auth=true", plain, 535},
		{"STARTTLS required, not offered", "smtp://u:right@ADDR", plain, 454},
		{"local refusal of clear-text credentials", "smtp://u:right@ADDR?starttls=opportunistic", plain, 454},
		{"AUTH 535 inside TLS", "smtps://u:wrong@ADDR?ca=" + ca.PEM, tlsSrv, 535},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := tc.srv.sessions()
			_, _, err := relayDial(t, tc.url, tc.srv.Addr)
			var e *Error
			if !errors.As(err, &e) || e.Code != tc.code {
				t.Fatalf("err = %v, want %d", err, tc.code)
			}
			if got := tc.srv.received(n); !strings.HasSuffix(got, "QUIT\r\n") {
				t.Fatalf("server did not see QUIT: %q", got)
			}
		})
	}
	// A greeting refused with 554 gets a QUIT too (RFC 5321 §3.1).
	saw := make(chan string, 1)
	addr := scripted(t, func(c net.Conn, r *bufio.Reader) {
		io.WriteString(c, "554 5.7.1 not today\r\n")
		saw <- expectLine(r)
		io.WriteString(c, "221 bye\r\n")
	})
	if _, err := Dial(ctxT(t), addr, fast()); err == nil {
		t.Fatal("554 greeting accepted")
	}
	if l := <-saw; l != "QUIT" {
		t.Fatalf("after a 554 greeting the client sent %q", l)
	}
}

// TestServerNameForAnIPAddress: a host dialled by IP address (as an MX
// host is, address by address) is verified and reported under its name.
func TestServerNameForAnIPAddress(t *testing.T) {
	ca := newTestCA(t)
	ts := startServer(t, nil, nil, func(s *gosmtp.Server) {
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{ca.Leaf}}
	})
	r, err := ParseRelayURL("smtp://" + ts.Addr + "?ca=" + ca.PEM + "&starttls=required")
	if err != nil {
		t.Fatal(err)
	}
	o := r.Options(&Options{ServerName: "mx1.relay.test"})
	c, err := Dial(ctxT(t), ts.Addr, o)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.SendAndQuit(ctxT(t), &Envelope{From: "a@x.test", Recipients: []string{"b@y.test"}}, strings.NewReader("hi"))
	if err != nil || res.Server != "mx1.relay.test" || res.RemoteAddr.String() != ts.Addr || !res.TLSVerified {
		t.Fatalf("%v: server %q at %v, verified %v", err, res.Server, res.RemoteAddr, res.TLSVerified)
	}
	// The certificate does not name another host: under the required
	// policy that is a temporary local refusal.
	o.ServerName = "mx2.relay.test"
	_, err = Dial(ctxT(t), ts.Addr, o)
	var e *Error
	if !errors.As(err, &e) || e.EnhancedCode != (EnhancedCode{4, 7, 5}) || !strings.Contains(err.Error(), "mx2.relay.test") {
		t.Fatalf("wrong name: %v", err)
	}
}
