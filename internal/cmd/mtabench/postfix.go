package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// postfixServer is a private Postfix instance: its own configuration,
// queue and data directories under a temporary directory, submission on a
// loopback port with STARTTLS and Cyrus SASL (sasldb) AUTH, relaying
// everything to the sink. Otherwise Postfix's defaults, as users run it.
type postfixServer struct {
	dir, conf string
	addr      string
	cg        *cpuGroup
	keep      bool
}

func startPostfix(ctx context.Context, c *config, sinkAddr string) (*postfixServer, error) {
	for _, bin := range []string{"postfix", "saslpasswd2"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("%s not found: apt-get install postfix sasl2-bin libsasl2-modules", bin)
		}
	}
	pf, err := user.Lookup("postfix")
	if err != nil {
		return nil, fmt.Errorf("no postfix user (is the Debian package installed?): %w", err)
	}
	uid, _ := strconv.Atoi(pf.Uid)
	dir, err := os.MkdirTemp("", "mtabench-postfix-")
	if err != nil {
		return nil, err
	}
	s := &postfixServer{dir: dir, conf: filepath.Join(dir, "conf"), addr: freeAddr(), keep: c.keep}
	if err := s.configure(sinkAddr, uid); err != nil {
		return nil, err
	}
	s.cg = newCPUGroup("postfix")
	if s.cg.dir == "" {
		return nil, fmt.Errorf("cannot make a cpuacct cgroup under %s: Postfix's CPU is spread over many processes", cpuacctRoot)
	}
	cmd := exec.Command("/bin/sh", "-c", s.cg.shellPrefix()+`exec postfix -c "$0" start`, s.conf)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("postfix start: %v: %s (see %s/maillog)", err, out, dir)
	}
	if err := waitReady("", s.addr); err != nil {
		s.stop()
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "mtabench: postfix running in %s (CPU from %s)\n", dir, s.cg.describe())
	return s, nil
}

func (s *postfixServer) configure(sinkAddr string, uid int) error {
	d := s.dir
	if err := os.Chmod(d, 0o755); err != nil {
		return err
	}
	for _, sub := range []string{"conf", "queue", "data", "conf/sasl"} {
		if err := os.Mkdir(filepath.Join(d, sub), 0o755); err != nil {
			return err
		}
	}
	if err := os.Chown(filepath.Join(d, "data"), uid, -1); err != nil {
		return err
	}
	if err := writeSelfSigned(filepath.Join(d, "cert.pem"), filepath.Join(d, "key.pem")); err != nil {
		return err
	}
	main := fmt.Sprintf(`compatibility_level = 3.6
queue_directory = %[1]s/queue
data_directory = %[1]s/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.localhost
mydomain = localhost
myorigin = $myhostname
mydestination =
alias_maps =
alias_database =
biff = no
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
relayhost = [%[2]s]:%[3]s
smtp_tls_security_level = none
smtpd_tls_security_level = may
smtpd_tls_cert_file = %[1]s/cert.pem
smtpd_tls_key_file = %[1]s/key.pem
smtpd_tls_auth_only = yes
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
smtpd_sasl_local_domain = postfix.localhost
cyrus_sasl_config_path = %[1]s/conf/sasl
smtpd_relay_restrictions = permit_sasl_authenticated, reject
maillog_file_prefixes = %[1]s
maillog_file = %[1]s/maillog
`, d, host(sinkAddr), port(sinkAddr))
	if err := os.WriteFile(filepath.Join(s.conf, "main.cf"), []byte(main), 0o644); err != nil {
		return err
	}
	if err := s.writeMaster(); err != nil {
		return err
	}
	sasl := fmt.Sprintf("pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN LOGIN\nsasldb_path: %s/sasldb2\n", d)
	// Debian's Postfix reads $config_directory/sasl/smtpd.conf whatever
	// cyrus_sasl_config_path says; both point there.
	if err := os.WriteFile(filepath.Join(s.conf, "sasl", "smtpd.conf"), []byte(sasl), 0o644); err != nil {
		return err
	}
	cmd := exec.Command("saslpasswd2", "-f", filepath.Join(d, "sasldb2"), "-c", "-p", "-u", "postfix.localhost", benchUser)
	cmd.Stdin = strings.NewReader(benchPassword)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("saslpasswd2: %v: %s", err, out)
	}
	return os.Chown(filepath.Join(d, "sasldb2"), uid, -1)
}

// writeMaster takes Debian's master.cf without chroot (the private queue
// is not a chroot jail) and with smtpd on the benchmark's port.
func (s *postfixServer) writeMaster() error {
	src, err := os.ReadFile("/etc/postfix/master.cf")
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, line := range strings.Split(string(src), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 8 && !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, " ") && f[0] == "smtp" && f[1] == "inet":
			continue
		case len(f) >= 8 && !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, " "):
			f[4] = "n"
			line = strings.Join(f, " ")
		}
		b.WriteString(line + "\n")
	}
	fmt.Fprintf(&b, "%s inet n - n - - smtpd\n", s.addr)
	return os.WriteFile(filepath.Join(s.conf, "master.cf"), []byte(b.String()), 0o644)
}

func (s *postfixServer) name() string                { return "postfix" }
func (s *postfixServer) submitAddr() string          { return s.addr }
func (s *postfixServer) user() (string, string)      { return benchUser, benchPassword }
func (s *postfixServer) cpu() (time.Duration, error) { return s.cg.usage() }

func (s *postfixServer) stop() error {
	out, err := exec.Command("postfix", "-c", s.conf, "stop").CombinedOutput()
	if err != nil {
		err = fmt.Errorf("postfix stop: %v: %s", err, out)
	}
	s.cg.remove()
	if !s.keep {
		os.RemoveAll(s.dir)
	}
	return err
}

func host(addr string) string { h, _, _ := net.SplitHostPort(addr); return h }
func port(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }

// writeSelfSigned writes a throw-away certificate for Postfix's STARTTLS.
func writeSelfSigned(certFile, keyFile string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "postfix.localhost"},
		DNSNames: []string{"postfix.localhost", "localhost"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	return os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
}
