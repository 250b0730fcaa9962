package smtp

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRelayURLParameters(t *testing.T) {
	ca := newTestCA(t)
	r, err := ParseRelayURL("smtp://u:p%2Fw@relay.test:2525?ca=" + ca.PEM + "&auth=CRAM-MD5&starttls=required")
	if err != nil {
		t.Fatal(err)
	}
	if r.CAFile != ca.PEM || r.RootCAs == nil || r.AuthMechanism != "CRAM-MD5" || r.InsecureSkipVerify {
		t.Fatalf("%+v", r)
	}
	want := "smtp://u:***@relay.test:2525?auth=cram-md5&ca=" + ca.PEM + "&starttls=required"
	if r.String() != want {
		t.Fatalf("String() = %q, want %q", r.String(), want)
	}
	o := r.Options(&Options{LocalName: "me"})
	if o.TLSConfig == nil || o.TLSConfig.RootCAs != r.RootCAs || o.TLSConfig.InsecureSkipVerify || o.AuthMechanism != "CRAM-MD5" || o.Password != "p/w" {
		t.Fatalf("options %+v", o)
	}
	r, err = ParseRelayURL("smtps://u:tok@relay.test?tls_verify=false&auth=xoauth2")
	if err != nil || !r.InsecureSkipVerify || r.String() != "smtps://u:***@relay.test:465?auth=xoauth2&tls_verify=false" {
		t.Fatalf("%+v %v %s", r, err, r)
	}
	if o := r.Options(nil); !o.TLSConfig.InsecureSkipVerify || o.OAuthToken != "tok" || o.Password != "" {
		t.Fatalf("options %+v", o)
	}

	dir := t.TempDir()
	notPEM := filepath.Join(dir, "junk.pem")
	os.WriteFile(notPEM, []byte("not a certificate"), 0o600)
	for _, tc := range []struct{ in, want string }{
		{"smtp://h?ca=" + filepath.Join(dir, "missing.pem"), "relay URL: ca: open " + filepath.Join(dir, "missing.pem") + ": no such file"},
		{"smtp://h?ca=" + notPEM, "relay URL: ca=" + notPEM + ": no PEM certificate in the file"},
		{"smtp://h?ca=", "ca: want the path"},
		{"smtp://h?tls_verify=nope", `tls_verify="nope"`},
		{"smtp://u:secret@h?auth=digest-md5", `auth="digest-md5": want plain, login, cram-md5 or xoauth2`},
		{"smtp://h?auth=plain", "needs credentials"},
		{"smtp://u@h?auth=xoauth2", "needs the bearer token"},
		{"smtp://h?starttls=off&tls_verify=false", "need TLS"},
		{"smtp://h?starttls=off&ca=" + ca.PEM, "need TLS"},
	} {
		_, err := ParseRelayURL(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "secret") {
			t.Errorf("%q: err %v, want %q", tc.in, err, tc.want)
		}
	}
}

// FuzzParseRelayURL: any input either fails with an error that shows no
// part of the password, or parses into a relay whose String() parses
// back to the same relay with the password replaced by ***.
func FuzzParseRelayURL(f *testing.F) {
	for _, s := range []string{
		"smtp://u:p@h:25?starttls=required&ca=/etc/ca.pem&auth=plain",
		"smtps://u:tok@h?tls_verify=false&auth=xoauth2",
		"smtp://h?insecure_auth=1&ca=a%20b/c.pem",
		"smtp://us%40er:p%3Ass@[::1]:2525?starttls=off",
		"smtp://u:pw@h?ca=%2Fx&ca=y",
	} {
		f.Add(s)
	}
	pool := x509.NewCertPool()
	load := func(string) (*x509.CertPool, error) { return pool, nil } // no file reads while fuzzing
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parseRelayURL(s, load)
		if err != nil {
			if r != nil {
				t.Fatal("relay and error")
			}
			return
		}
		if r.Password != "" && len(r.Password) >= 4 && strings.Contains(r.String(), r.Password) && !strings.Contains(r.Username+r.Host+r.CAFile, r.Password) {
			t.Fatalf("String() %q shows the password", r.String())
		}
		back, err := parseRelayURL(r.String(), load)
		if err != nil {
			t.Fatalf("%q → %q does not parse: %v", s, r.String(), err)
		}
		wantPass := ""
		if r.Password != "" {
			wantPass = redacted
		}
		if r.AuthMechanism == "XOAUTH2" && r.Password == "" {
			t.Fatal("xoauth2 without a token parsed")
		}
		if back.Host != r.Host || back.Port != r.Port || back.Username != r.Username || back.Password != wantPass ||
			back.ImplicitTLS != r.ImplicitTLS || back.StartTLS != r.StartTLS || back.AllowInsecureAuth != r.AllowInsecureAuth ||
			back.CAFile != r.CAFile || back.InsecureSkipVerify != r.InsecureSkipVerify || back.AuthMechanism != r.AuthMechanism {
			t.Fatalf("%q → %q → %+v, want %+v", s, r.String(), back, r)
		}
	})
}
