package dkim

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Key is one signing key: the signing domain (d=), the selector (s=) under
// which its public key is published in DNS, and the private key.
type Key struct {
	Domain   string
	Selector string
	// Signer is an *rsa.PrivateKey or an ed25519.PrivateKey.
	Signer crypto.Signer
}

// RSA key sizes accepted: RFC 8301 makes 1024 bits the floor, but large
// providers want 2048; verifiers need not go past 4096.
const (
	MinRSABits = 2048
	MaxRSABits = 4096
)

// ParseSpec loads the key of a "DOMAIN:SELECTOR:KEYFILE" entry (the
// --dkim flag). KEYFILE is everything after the second colon.
func ParseSpec(spec string) (Key, error) {
	domain, rest, ok1 := strings.Cut(spec, ":")
	selector, file, ok2 := strings.Cut(rest, ":")
	if !ok1 || !ok2 || domain == "" || selector == "" || file == "" {
		return Key{}, fmt.Errorf("dkim: %q is not DOMAIN:SELECTOR:KEYFILE", spec)
	}
	return LoadKey(domain, selector, file)
}

// LoadKey reads the PEM private key in file and returns it as the key of
// selector for domain.
func LoadKey(domain, selector, file string) (Key, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return Key{}, fmt.Errorf("dkim: key for %s: %w", domain, err)
	}
	signer, err := ParsePrivateKey(data)
	if err != nil {
		return Key{}, fmt.Errorf("dkim: key file %s: %w", file, err)
	}
	return Key{Domain: domain, Selector: selector, Signer: signer}.check()
}

// ParsePrivateKey parses the first PEM block of data: an RSA key in PKCS#1
// ("RSA PRIVATE KEY") or PKCS#8 ("PRIVATE KEY"), or an Ed25519 key in
// PKCS#8. It refuses encrypted keys, other key types and RSA keys outside
// MinRSABits..MaxRSABits, saying which.
func ParsePrivateKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block (want -----BEGIN PRIVATE KEY-----)")
	}
	if _, ok := block.Headers["DEK-Info"]; ok || block.Type == "ENCRYPTED PRIVATE KEY" {
		return nil, errors.New("the key is encrypted; DKIM keys are read unattended, so store it unencrypted with mode 0600")
	}
	var key any
	var err error
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		return nil, errors.New("an EC key: DKIM signs with RSA or Ed25519 only")
	case "PUBLIC KEY", "RSA PUBLIC KEY":
		return nil, errors.New("a public key: give the private key")
	default:
		return nil, fmt.Errorf("a PEM %q block: want RSA PRIVATE KEY or PRIVATE KEY", block.Type)
	}
	if err != nil {
		return nil, err
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if err := checkRSA(k); err != nil {
			return nil, err
		}
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	default:
		return nil, fmt.Errorf("a %T key: DKIM signs with RSA or Ed25519 only", key)
	}
}

func checkRSA(k *rsa.PrivateKey) error {
	bits := k.N.BitLen()
	if bits < MinRSABits {
		return fmt.Errorf("RSA key of %d bits is too weak: at least %d bits", bits, MinRSABits)
	}
	if bits > MaxRSABits {
		return fmt.Errorf("RSA key of %d bits: verifiers need not accept more than %d (RFC 8301)", bits, MaxRSABits)
	}
	return k.Validate()
}

// check validates k and returns it with its domain normalised.
func (k Key) check() (Key, error) {
	d, err := normalizeDomain(k.Domain)
	if err != nil || !isDomain(d) {
		return Key{}, fmt.Errorf("dkim: %q is not a domain name", k.Domain)
	}
	if !isDomain(k.Selector) {
		return Key{}, fmt.Errorf("dkim: selector %q for %s is not a DNS label (letters, digits, hyphens, dots)", k.Selector, k.Domain)
	}
	switch s := k.Signer.(type) {
	case *rsa.PrivateKey:
		if err := checkRSA(s); err != nil {
			return Key{}, fmt.Errorf("dkim: key %s for %s: %w", k.Selector, k.Domain, err)
		}
	case ed25519.PrivateKey:
		if len(s) != ed25519.PrivateKeySize {
			return Key{}, fmt.Errorf("dkim: key %s for %s: bad Ed25519 key", k.Selector, k.Domain)
		}
	default:
		return Key{}, fmt.Errorf("dkim: key %s for %s: a %T key: RSA or Ed25519 only", k.Selector, k.Domain, k.Signer)
	}
	k.Domain = d
	return k, nil
}

// isDomain reports whether s is dot-separated LDH labels (an A-label
// domain, or a selector).
func isDomain(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// GenerateKey makes a new key: kind "rsa" (bits between MinRSABits and
// MaxRSABits) or "ed25519" (bits ignored).
func GenerateKey(kind string, bits int) (crypto.Signer, error) {
	switch kind {
	case "rsa":
		if bits < MinRSABits || bits > MaxRSABits {
			return nil, fmt.Errorf("dkim: RSA keys have %d to %d bits, not %d", MinRSABits, MaxRSABits, bits)
		}
		return rsa.GenerateKey(rand.Reader, bits)
	case "ed25519":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}
	return nil, fmt.Errorf("dkim: key type %q: rsa or ed25519", kind)
}

// MarshalPrivateKey encodes k as a PKCS#8 PEM block.
func MarshalPrivateKey(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// TXTRecord returns the DNS TXT value that publishes pub, the public half
// of a key: "v=DKIM1; k=rsa; p=…" (p= the DER SubjectPublicKeyInfo) or
// "v=DKIM1; k=ed25519; p=…" (p= the raw 32 bytes, RFC 8463 §4.2).
func TXTRecord(pub crypto.PublicKey) (string, error) {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(p)
		if err != nil {
			return "", err
		}
		return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der), nil
	case ed25519.PublicKey:
		return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(p), nil
	}
	return "", fmt.Errorf("dkim: a %T key: RSA or Ed25519 only", pub)
}

// RecordName returns the DNS name a key's TXT record is published at:
// SELECTOR._domainkey.DOMAIN.
func RecordName(selector, domain string) string {
	return selector + "._domainkey." + domain
}

// SplitTXT cuts a TXT value into the character-strings of at most 255
// octets that one DNS TXT record is made of.
func SplitTXT(value string) []string {
	var parts []string
	for len(value) > 255 {
		parts = append(parts, value[:255])
		value = value[255:]
	}
	return append(parts, value)
}
