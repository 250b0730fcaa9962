// Package tlsfiles keeps the daemon's TLS certificates: a self-signed
// certificate that persists in the data directory, so clients can pin it
// across restarts, and operator-supplied certificate files that can be
// reloaded without a restart.
package tlsfiles

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// validity is how long a self-signed certificate is made for; renewAhead
// is how long before its end a new one replaces it at start-up.
const (
	validity   = 2 * 365 * 24 * time.Hour
	renewAhead = 30 * 24 * time.Hour
)

// SelfSigned makes a self-signed ECDSA P-256 leaf certificate for hosts
// (DNS names or IP addresses): not a CA, so it cannot sign others; server
// authentication only. Leaf is set.
func SelfSigned(hosts ...string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"outbox"}, CommonName: "outbox self-signed"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// Persistent returns the self-signed certificate kept as cert.pem and
// key.pem in dir, making and saving a new one when they are missing,
// unreadable, end within 30 days, or do not name every one of hosts.
// created reports a new certificate.
func Persistent(dir string, hosts ...string) (cert tls.Certificate, created bool, err error) {
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if c, err := tls.LoadX509KeyPair(certFile, keyFile); err == nil && covers(c.Leaf, hosts) &&
		time.Until(c.Leaf.NotAfter) > renewAhead && !c.Leaf.IsCA {
		return c, false, nil
	}
	c, err := SelfSigned(hosts...)
	if err != nil {
		return tls.Certificate{}, false, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		return tls.Certificate{}, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return tls.Certificate{}, false, err
	}
	// The key first and privately; the certificate names it once both exist.
	if err := writeFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return tls.Certificate{}, false, err
	}
	if err := writeFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}), 0o644); err != nil {
		return tls.Certificate{}, false, err
	}
	return c, true, nil
}

// covers reports whether leaf names every host.
func covers(leaf *x509.Certificate, hosts []string) bool {
	if leaf == nil {
		return false
	}
	for _, h := range hosts {
		if h == "" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(leaf.IPAddresses, ip.Equal) {
				return false
			}
		} else if !slices.ContainsFunc(leaf.DNSNames, func(n string) bool { return strings.EqualFold(n, h) }) {
			return false
		}
	}
	return true
}

// writeFile writes data to path through a temporary file and a rename, so
// a crash leaves the old file or the new one, never half of one.
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err == nil {
		_, err = tmp.Write(data)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Fingerprint is the SHA-256 fingerprint of a DER certificate as clients
// show it: upper-case hex pairs joined by colons.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

// Files is a certificate and key loaded from files, served through
// GetCertificate so that Reload takes effect for new handshakes without a
// restart.
type Files struct {
	certFile, keyFile string

	mu   sync.RWMutex
	cert *tls.Certificate
}

// Load reads certFile and keyFile (PEM).
func Load(certFile, keyFile string) (*Files, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("both a certificate file and a key file are needed")
	}
	f := &Files{certFile: certFile, keyFile: keyFile}
	if err := f.Reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// Reload reads the files again. On error the certificate in use stays.
func (f *Files) Reload() error {
	f.mu.RLock()
	certFile, keyFile := f.certFile, f.keyFile
	f.mu.RUnlock()
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return fmt.Errorf("%s, %s: %w", certFile, keyFile, err)
	}
	f.mu.Lock()
	f.cert = &c
	f.mu.Unlock()
	return nil
}

// Certificate returns the certificate in use.
func (f *Files) Certificate() *tls.Certificate {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.cert
}

// GetCertificate serves the certificate in use, for tls.Config.
func (f *Files) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return f.Certificate(), nil
}

// Config returns a server configuration that serves f.
func (f *Files) Config() *tls.Config {
	return &tls.Config{GetCertificate: f.GetCertificate, MinVersion: tls.VersionTLS12}
}

// Prepare reads a certificate and key, possibly from other files than
// before, without putting them in use: Apply on the result does, for new
// handshakes. A configuration reload prepares every part before it
// applies any, so on an error nothing changes.
func (f *Files) Prepare(certFile, keyFile string) (*Staged, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("both a certificate file and a key file are needed")
	}
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("%s, %s: %w", certFile, keyFile, err)
	}
	return &Staged{f: f, certFile: certFile, keyFile: keyFile, cert: c}, nil
}

// Staged is a certificate Prepare read, not yet in use.
type Staged struct {
	f                 *Files
	certFile, keyFile string
	cert              tls.Certificate
}

// Changed reports whether the staged certificate differs from the one in
// use.
func (s *Staged) Changed() bool {
	in := s.f.Certificate()
	return in == nil || !slices.EqualFunc(in.Certificate, s.cert.Certificate, slices.Equal)
}

// Fingerprint is the staged leaf certificate's SHA-256 fingerprint.
func (s *Staged) Fingerprint() string { return Fingerprint(s.cert.Certificate[0]) }

// Apply puts the staged certificate in use, and its files for Reload.
func (s *Staged) Apply() {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	s.f.certFile, s.f.keyFile, s.f.cert = s.certFile, s.keyFile, &s.cert
}
