package tlsfiles

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

func TestSelfSignedIsALeaf(t *testing.T) {
	c, err := SelfSigned("mail.example.test", "127.0.0.1", "::1")
	if err != nil {
		t.Fatal(err)
	}
	l := c.Leaf
	if l.IsCA || l.KeyUsage&x509.KeyUsageCertSign != 0 {
		t.Fatalf("self-signed certificate can sign: IsCA=%v usage=%b", l.IsCA, l.KeyUsage)
	}
	for _, h := range []string{"mail.example.test", "127.0.0.1", "::1"} {
		if err := l.VerifyHostname(h); err != nil {
			t.Errorf("does not cover %s: %v", h, err)
		}
	}
}

func TestPersistentIsReusedAndRenewedForNewHosts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	a, created, err := Persistent(dir, "127.0.0.1", "mx.example.test")
	if err != nil || !created {
		t.Fatalf("first: created=%v err=%v", created, err)
	}
	if st, err := os.Stat(filepath.Join(dir, "key.pem")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st.Mode(), err)
	}
	b, created, err := Persistent(dir, "mx.example.test", "127.0.0.1")
	if err != nil || created {
		t.Fatalf("second: created=%v err=%v", created, err)
	}
	if !bytes.Equal(a.Certificate[0], b.Certificate[0]) {
		t.Fatal("a restart made a new certificate")
	}
	c, created, err := Persistent(dir, "mx.example.test", "127.0.0.1", "192.0.2.10")
	if err != nil || !created || bytes.Equal(a.Certificate[0], c.Certificate[0]) {
		t.Fatalf("a new bind address did not renew: created=%v err=%v", created, err)
	}
	if err := c.Leaf.VerifyHostname("192.0.2.10"); err != nil {
		t.Fatal(err)
	}
}

func TestFingerprint(t *testing.T) {
	c, _ := SelfSigned("x")
	if fp := Fingerprint(c.Certificate[0]); !regexp.MustCompile(`^([0-9A-F]{2}:){31}[0-9A-F]{2}$`).MatchString(fp) {
		t.Fatalf("fingerprint %q", fp)
	}
}

func TestFilesReload(t *testing.T) {
	dir := t.TempDir()
	one, _, err := Persistent(filepath.Join(dir, "one"), "a.test")
	if err != nil {
		t.Fatal(err)
	}
	two, _, err := Persistent(filepath.Join(dir, "two"), "b.test")
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	cp := func(sub string) {
		for src, dst := range map[string]string{"cert.pem": certFile, "key.pem": keyFile} {
			data, err := os.ReadFile(filepath.Join(dir, sub, src))
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(dst, data, 0o600)
		}
	}
	cp("one")
	f, err := Load(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	served := func() []byte {
		c, _ := f.Config().GetCertificate(&tls.ClientHelloInfo{})
		return c.Certificate[0]
	}
	if !bytes.Equal(served(), one.Certificate[0]) {
		t.Fatal("not serving the loaded certificate")
	}
	cp("two")
	if err := f.Reload(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(served(), two.Certificate[0]) {
		t.Fatal("Reload did not switch certificates")
	}
	os.WriteFile(keyFile, []byte("garbage"), 0o600)
	if err := f.Reload(); err == nil {
		t.Fatal("Reload of a broken key succeeded")
	}
	if !bytes.Equal(served(), two.Certificate[0]) {
		t.Fatal("a failed Reload dropped the certificate in use")
	}
	if _, err := Load(certFile, ""); err == nil {
		t.Fatal("Load without a key file succeeded")
	}
}
