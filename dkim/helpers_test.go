package dkim

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"

	msgauth "github.com/emersion/go-msgauth/dkim"

	"github.com/outbox-mail/outbox/internal/crlf"
	"github.com/outbox-mail/outbox/internal/testenv"
)

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

// testRSA returns one RSA-2048 key shared by the tests (generating one
// takes a while on a busy machine).
func testRSA(t testing.TB) *rsa.PrivateKey {
	rsaOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		rsaKey = k
	})
	return rsaKey
}

func testEd25519(t testing.TB) ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// setup returns a signer for keys and a DNS server publishing them.
func setup(t *testing.T, keys ...Key) (*Signer, *dnsServer) {
	t.Helper()
	s, err := NewSigner(keys...)
	if err != nil {
		t.Fatal(err)
	}
	dns := startDNS(t)
	for _, k := range s.keys { // with their domains normalised
		dns.publish(t, k)
	}
	return s, dns
}

// sign returns msg with its signature fields before it, normalised as
// the smtp client sends it.
func sign(t *testing.T, s *Signer, msg []byte) []byte {
	t.Helper()
	sig, err := s.Sign(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	if sig == nil {
		t.Fatal("Sign returned no signature")
	}
	return append(sig, normalize(t, msg)...)
}

func normalize(t testing.TB, msg []byte) []byte {
	var out bytes.Buffer
	if _, err := out.ReadFrom(crlf.NewReader(bytes.NewReader(msg))); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// verifyGo verifies with go-msgauth and returns its verifications, one
// per signature in the order they appear.
func verifyGo(t *testing.T, dns *dnsServer, signed []byte) []*msgauth.Verification {
	t.Helper()
	vs, err := msgauth.VerifyWithOptions(bytes.NewReader(signed), &msgauth.VerifyOptions{LookupTXT: dns.lookupTXT})
	if err != nil {
		t.Fatalf("go-msgauth: %v", err)
	}
	return vs
}

// verifier is an independent DKIM implementation run as a subprocess on
// a signed message: it prints "RESULT DOMAIN SELECTOR ALGORITHM …" per
// signature, then "overall RESULT".
type verifier struct {
	name    string
	check   []string // exits 0 when the verifier is installed
	run     []string // the DNS server's port is appended
	install string
	ed25519 bool // knows RFC 8463
}

var verifiers = []verifier{
	{"dkimpy", []string{"/usr/bin/python3", "-c", "import dkim, nacl, dns.resolver"},
		[]string{"/usr/bin/python3", "testdata/verify.py"}, "apt-get install -y python3-dkim", true},
	// Debian 12's Mail::DKIM predates its Ed25519 support.
	{"Mail::DKIM", []string{"perl", "-MMail::DKIM::Verifier", "-MNet::DNS::Resolver", "-e1"},
		[]string{"perl", "testdata/verify.pl"}, "apt-get install -y libmail-dkim-perl", false},
}

var installedOnce sync.Map // verifier name → func() error

// installed reports (once per verifier) whether it can run.
func (v verifier) installed() error {
	f, _ := installedOnce.LoadOrStore(v.name, sync.OnceValue(func() error {
		return exec.Command(v.check[0], v.check[1:]...).Run()
	}))
	return f.(func() error)()
}

// result is one verifier's verdict on one signature.
type result struct {
	verifier, verdict, domain, alg string
}

// verifyExternal runs every independent verifier on signed. A verifier
// that is not installed skips the test, or fails it when CI is set.
func verifyExternal(t *testing.T, dns *dnsServer, signed []byte) []result {
	t.Helper()
	_, port, _ := strings.Cut(dns.addr(), ":")
	var out []result
	for _, v := range verifiers {
		if err := v.installed(); err != nil {
			testenv.Missing(t, "%s not installed (%v); to run this check: %s", v.name, err, v.install)
		}
		cmd := exec.Command(v.run[0], append(v.run[1:], port)...)
		cmd.Stdin = bytes.NewReader(signed)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdout, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v: %s", v.name, err, stderr.String())
		}
		lines := strings.Split(strings.TrimSpace(string(stdout)), "\n")
		for _, l := range lines[:len(lines)-1] {
			f := strings.Fields(l)
			if len(f) < 4 {
				t.Fatalf("%s printed %q", v.name, l)
			}
			if !v.ed25519 && strings.HasPrefix(f[3], "ed25519") {
				continue
			}
			out = append(out, result{v.name, f[0], f[1], f[3]})
		}
	}
	return out
}

// checkBoth asserts that go-msgauth and the independent verifiers find
// exactly one passing signature per domain in want (in order), and
// nothing else.
func checkBoth(t *testing.T, dns *dnsServer, signed []byte, want ...string) {
	t.Helper()
	vs := verifyGo(t, dns, signed)
	if len(vs) != len(want) {
		t.Fatalf("go-msgauth found %d signatures, want %d\n%s", len(vs), len(want), head(signed))
	}
	for i, v := range vs {
		if v.Err != nil || v.Domain != want[i] {
			t.Errorf("go-msgauth: signature %d: domain %q err %v, want %q and a pass\n%s", i, v.Domain, v.Err, want[i], head(signed))
		}
	}
	checkExternal(t, dns, signed, want...)
}

// checkExternal asserts that the independent verifiers pass every
// signature, one per domain in want.
func checkExternal(t *testing.T, dns *dnsServer, signed []byte, want ...string) {
	t.Helper()
	seen := map[string]int{}
	for _, r := range verifyExternal(t, dns, signed) {
		seen[r.verifier]++
		if r.verdict != "pass" || !slices.Contains(want, r.domain) {
			t.Errorf("%s: %s signature of %s: %s\n%s", r.verifier, r.alg, r.domain, r.verdict, head(signed))
		}
	}
	if seen["dkimpy"] != len(want) {
		t.Errorf("dkimpy checked %d signatures, want %d", seen["dkimpy"], len(want))
	}
}

// checkFails asserts that every verifier rejects every signature.
func checkFails(t *testing.T, dns *dnsServer, signed []byte) {
	t.Helper()
	vs := verifyGo(t, dns, signed)
	if len(vs) == 0 {
		t.Fatal("go-msgauth found no signature")
	}
	for i, v := range vs {
		if v.Err == nil {
			t.Errorf("go-msgauth: signature %d passes a tampered message", i)
		}
	}
	rs := verifyExternal(t, dns, signed)
	if len(rs) == 0 {
		t.Fatal("no independent verifier checked the message")
	}
	for _, r := range rs {
		if r.verdict == "pass" {
			t.Errorf("%s passes a tampered message (%s signature)", r.verifier, r.alg)
		}
	}
}

// head is the header block of a message, for failure messages.
func head(msg []byte) string {
	h, _, _ := bytes.Cut(msg, []byte("\r\n\r\n"))
	return string(h)
}
