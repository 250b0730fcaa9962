package main_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/internal/smtpsink"
	"github.com/outbox-mail/outbox/internal/tlsfiles"
)

// TestReloadSecretFilesUsersCertificateWebhooks rotates what lives in
// files beside the config: the token file and the user file are read
// again, a session whose user's password changed may not submit any more
// (but stays connected), the STARTTLS certificate is replaced for new
// handshakes, and a webhook added to a daemon started without any
// receives events.
func TestReloadSecretFilesUsersCertificateWebhooks(t *testing.T) {
	dir := t.TempDir()
	tokFile, userFile, cfgFile := filepath.Join(dir, "tokens"), filepath.Join(dir, "users"), filepath.Join(dir, "outbox.json")
	certDir := filepath.Join(dir, "certs")
	if _, _, err := tlsfiles.Persistent(certDir, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, tokFile, oldToken+"\n")
	writeConfig(t, userFile, smtpUser+":"+smtpPass+"\n")
	writeConfig(t, cfgFile, "{ // no webhooks yet\n}\n")
	d := launchDaemon(t, exec.Command(binary, daemonArgs(dir, "--config", cfgFile, "--api-token-file", tokFile,
		"--smtp-user-file", userFile, "--tls-cert", filepath.Join(certDir, "cert.pem"), "--tls-key", filepath.Join(certDir, "key.pem"))...))
	served := func() []byte {
		c := smtpFrom(t, "127.0.0.1", d.smtpAddr)
		defer c.Close()
		st, _ := c.TLSConnectionState()
		return st.PeerCertificates[0].Raw
	}
	firstCert := served()
	session := smtpFrom(t, "127.0.0.1", d.smtpAddr)
	defer session.Close()
	if err := session.Auth(smtp.PlainAuth("", smtpUser, smtpPass, "127.0.0.1")); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var posts []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		posts = append(posts, string(body))
		mu.Unlock()
	}))
	defer hook.Close()

	// Everything rotates at once.
	writeConfig(t, tokFile, newToken+"\n")
	writeConfig(t, userFile, smtpUser+":a-new-password-42\n")
	os.Remove(filepath.Join(certDir, "cert.pem"))
	os.Remove(filepath.Join(certDir, "key.pem"))
	if _, created, err := tlsfiles.Persistent(certDir, "127.0.0.1"); err != nil || !created {
		t.Fatalf("new certificate: %v %v", created, err)
	}
	writeConfig(t, cfgFile, `{"webhooks": [{"url": "`+hook.URL+`/hook?token=abc", "secret": "webhook-secret-123"}]}`)
	logs := d.reload(t)
	for _, want := range []string{"configuration reloaded", "api tokens: 1 added, 1 removed", "smtp users: password changed for app",
		"certificates: SMTP certificate replaced", "webhooks: added http://" + strings.TrimPrefix(hook.URL, "http://") + "/hook?redacted"} {
		if !strings.Contains(logs, want) {
			t.Errorf("reload log lacks %q:\n%s", want, logs)
		}
	}
	if code := d.status(t, newToken); code != 200 {
		t.Errorf("token from the rewritten file: HTTP %d", code)
	}
	if code := d.status(t, oldToken); code != http.StatusUnauthorized {
		t.Errorf("token removed from the file: HTTP %d", code)
	}
	// The session authenticated with the old password is still open, but
	// may not start a transaction.
	if err := session.Mail("app@example.test"); err == nil || !strings.Contains(err.Error(), "530") {
		t.Errorf("MAIL after the password changed: %v, want 530", err)
	}
	if err := session.Noop(); err != nil {
		t.Errorf("the session was dropped: %v", err)
	}
	if bytes.Equal(served(), firstCert) {
		t.Error("STARTTLS still serves the old certificate")
	}
	c := smtpFrom(t, "127.0.0.1", d.smtpAddr)
	defer c.Close()
	if err := c.Auth(smtp.PlainAuth("", smtpUser, "a-new-password-42", "127.0.0.1")); err != nil {
		t.Fatalf("AUTH with the new password: %v", err)
	}
	submitOn(t, c, "ann@example.test", "hooked")
	for range 1000 {
		mu.Lock()
		n := len(posts)
		mu.Unlock()
		if n > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(posts) != 1 || !strings.Contains(posts[0], `"type":"delivered"`) {
		t.Errorf("webhook posts after the reload: %q", posts)
	}
	for _, secret := range []string{oldToken, newToken, smtpPass, "a-new-password-42", "webhook-secret-123", "token=abc"} {
		if strings.Contains(d.logs.String(), secret) {
			t.Errorf("the log shows a secret (%s…)", secret[:6])
		}
	}
}

// TestReloadRotatesDKIMKeys replaces the config's DKIM key with a new
// selector's: after SIGHUP mail is signed with the new key only, and the
// log names the selectors, never a key.
func TestReloadRotatesDKIMKeys(t *testing.T) {
	sink := startSink(t, smtpsink.Options{})
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "outbox.json")
	oldKey, oldRecords := dkimKey(t, "ed25519", "s1", "shop.test")
	newKey, newRecords := dkimKey(t, "ed25519", "s2", "shop.test")
	writeConfig(t, cfgFile, map[string]any{"dkim": []string{"shop.test:s1:" + oldKey}})
	d := launchDaemon(t, exec.Command(binary, daemonArgs(dir, "--config", cfgFile, "--api-token", testToken,
		"--relay", "smtp://"+sink.Addr()+"?starttls=off")...))
	send := func(subject string) []byte {
		var out struct{ ID string }
		if code := d.api("POST", "/v1/messages", "application/json", strings.NewReader(
			`{"from": "news@shop.test", "to": ["ann@dest.test"], "subject": "`+subject+`", "text": "Hi."}`), &out); code != 202 {
			t.Fatalf("enqueue: HTTP %d", code)
		}
		d.waitStatus(out.ID, "delivered")
		got := sink.Received()
		return got[len(got)-1].Data
	}
	if vs := verifyDKIM(t, oldRecords, send("before")); len(vs) != 1 || vs[0].Err != nil {
		t.Fatalf("before the reload: %+v", vs)
	}
	writeConfig(t, cfgFile, map[string]any{"dkim": []string{"shop.test:s2:" + newKey}})
	logs := d.reload(t)
	if !strings.Contains(logs, "dkim keys: added shop.test/s2") || !strings.Contains(logs, "dkim keys: removed shop.test/s1") {
		t.Errorf("reload log:\n%s", logs)
	}
	msg := send("after")
	if vs := verifyDKIM(t, newRecords, msg); len(vs) != 1 || vs[0].Err != nil {
		t.Errorf("after the reload, with the new key: %+v", vs)
	}
	if bytes.Contains(msg, []byte("s=s1;")) {
		t.Error("still signed with the removed selector")
	}
	// A key file that does not load is refused; signing goes on.
	writeConfig(t, cfgFile, map[string]any{"dkim": []string{"shop.test:s3:" + filepath.Join(dir, "missing.pem")}})
	if logs := d.reload(t); !strings.Contains(logs, "reload refused") {
		t.Errorf("a missing key file was not refused:\n%s", logs)
	}
	if vs := verifyDKIM(t, newRecords, send("still")); len(vs) != 1 || vs[0].Err != nil {
		t.Errorf("after a refused reload: %+v", vs)
	}
}
