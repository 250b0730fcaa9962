package dkim

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func writePEM(t *testing.T, typ string, der []byte) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// Keys in every accepted form load from --dkim entries and sign mail
// that verifies.
func TestLoadKeys(t *testing.T) {
	pkcs8 := func(k any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	files := map[string]string{
		"RSA PKCS#1":     writePEM(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(testRSA(t))),
		"RSA PKCS#8":     writePEM(t, "PRIVATE KEY", pkcs8(testRSA(t))),
		"Ed25519 PKCS#8": writePEM(t, "PRIVATE KEY", pkcs8(testEd25519(t))),
	}
	if _, err := exec.LookPath("openssl"); err == nil {
		dir := t.TempDir()
		for _, args := range [][]string{
			{"genrsa", "-traditional", "-out", "rsa1.pem", "2048"},
			{"genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "rsa8.pem"},
			{"genpkey", "-algorithm", "ed25519", "-out", "ed.pem"},
		} {
			cmd := exec.Command("openssl", args...)
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("openssl %v: %v: %s", args, err, out)
			}
		}
		files["openssl rsa traditional"] = filepath.Join(dir, "rsa1.pem")
		files["openssl rsa"] = filepath.Join(dir, "rsa8.pem")
		files["openssl ed25519"] = filepath.Join(dir, "ed.pem")
	}
	for name, file := range files {
		k, err := ParseSpec("Example.com:sel:" + file)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if k.Domain != "example.com" || k.Selector != "sel" {
			t.Errorf("%s: key %s/%s", name, k.Domain, k.Selector)
		}
		s, dns := setup(t, k)
		signed := sign(t, s, []byte(simpleMsg))
		if vs := verifyGo(t, dns, signed); len(vs) != 1 || vs[0].Err != nil {
			t.Errorf("%s: %v", name, vs[0].Err)
		}
	}
}

// Every way a key can be wrong is refused with an error naming the file
// and the problem.
func TestKeyErrors(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalECPrivateKey(ec)
	pubDER, _ := x509.MarshalPKIXPublicKey(testRSA(t).Public())
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	os.WriteFile(garbage, []byte("not a key\n"), 0o600)
	cases := map[string]struct{ file, want string }{
		"RSA 1024":  {writePEM(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(small)), "RSA key of 1024 bits is too weak: at least 2048 bits"},
		"encrypted": {writePEM(t, "ENCRYPTED PRIVATE KEY", []byte{1, 2, 3}), "encrypted"},
		"EC":        {writePEM(t, "EC PRIVATE KEY", ecDER), "an EC key: DKIM signs with RSA or Ed25519 only"},
		"public":    {writePEM(t, "PUBLIC KEY", pubDER), "a public key: give the private key"},
		"corrupt":   {writePEM(t, "PRIVATE KEY", []byte{0x30, 3, 1, 2}), "key file"},
		"garbage":   {garbage, "no PEM block"},
		"missing":   {filepath.Join(t.TempDir(), "nope.pem"), "no such file"},
	}
	for name, tc := range cases {
		_, err := ParseSpec("example.com:sel:" + tc.file)
		if err == nil || !strings.Contains(err.Error(), tc.want) || (name != "missing" && !strings.Contains(err.Error(), tc.file)) {
			t.Errorf("%s: %v; want an error naming %s and saying %q", name, err, tc.file, tc.want)
		}
	}
	good := writePEM(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(testRSA(t)))
	for _, spec := range []string{"example.com", "example.com:sel", ":sel:" + good, "example.com::" + good, "exa mple.com:sel:" + good, "example.com:s el:" + good, "-bad.com:sel:" + good} {
		if _, err := ParseSpec(spec); err == nil {
			t.Errorf("ParseSpec(%q) accepted", spec)
		}
	}
	huge := &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: new(big.Int).Lsh(big.NewInt(1), 4200), E: 65537}}
	if _, err := NewSigner(Key{Domain: "example.com", Selector: "s", Signer: huge}); err == nil || !strings.Contains(err.Error(), "4201 bits") {
		t.Errorf("a 4201-bit key: %v", err)
	}
	if _, err := NewSigner(); err == nil {
		t.Error("NewSigner with no keys accepted")
	}
}

// Generated keys marshal to PEM that loads again, and the TXT record is
// cut in 255-octet strings.
func TestGenerateKey(t *testing.T) {
	for _, kind := range []string{"rsa", "ed25519"} {
		k, err := GenerateKey(kind, 2048)
		if err != nil {
			t.Fatal(err)
		}
		pemBytes, err := MarshalPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParsePrivateKey(pemBytes)
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		rec, err := TXTRecord(back.Public())
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(rec, "v=DKIM1; k="+kind+"; p=") {
			t.Errorf("%s record %q", kind, rec)
		}
		parts := SplitTXT(rec)
		if strings.Join(parts, "") != rec {
			t.Errorf("SplitTXT lost bytes")
		}
		for _, p := range parts {
			if len(p) > 255 {
				t.Errorf("a %d-octet string", len(p))
			}
		}
		if kind == "rsa" && len(parts) != 2 {
			t.Errorf("RSA-2048 record in %d strings, want 2", len(parts))
		}
	}
	for _, bad := range []struct {
		kind string
		bits int
	}{{"rsa", 1024}, {"rsa", 8192}, {"dsa", 2048}} {
		if _, err := GenerateKey(bad.kind, bad.bits); err == nil {
			t.Errorf("GenerateKey(%s, %d) accepted", bad.kind, bad.bits)
		}
	}
}
