package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	msgauth "github.com/emersion/go-msgauth/dkim"

	"github.com/outbox-mail/outbox/api"
	"github.com/outbox-mail/outbox/dkim"
	"github.com/outbox-mail/outbox/internal/smtpsink"
	"github.com/outbox-mail/outbox/queue"
	osmtp "github.com/outbox-mail/outbox/smtp"
	"github.com/outbox-mail/outbox/webhook"
)

const hookSecret = "e2e-webhook-secret"

// hookReceiver is a webhook endpoint on loopback that keeps every event
// whose signature verifies.
type hookReceiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []webhook.Payload
}

func startHooks(t *testing.T) *hookReceiver {
	t.Helper()
	h := &hookReceiver{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if webhook.Verify(hookSecret, r.Header, body, time.Minute) != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var p webhook.Payload
		json.Unmarshal(body, &p)
		h.mu.Lock()
		h.got = append(h.got, p)
		h.mu.Unlock()
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// wait returns the event of type typ for recipient rcpt, waiting for it.
func (h *hookReceiver) wait(t *testing.T, typ, rcpt string) webhook.Payload {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		h.mu.Lock()
		for _, p := range h.got {
			if p.Type == typ && p.Recipient == rcpt {
				h.mu.Unlock()
				return p
			}
		}
		h.mu.Unlock()
	}
	t.Fatalf("no %s webhook event for %s; got %+v", typ, rcpt, h.got)
	return webhook.Payload{}
}

// dkimKey writes a new key for domain to a 0600 file and returns the file
// and the TXT record that publishes it.
func dkimKey(t *testing.T, kind, selector, domain string) (string, map[string]string) {
	t.Helper()
	k, err := dkim.GenerateKey(kind, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := dkim.MarshalPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), selector+".pem")
	if err := os.WriteFile(file, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	txt, err := dkim.TXTRecord(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return file, map[string]string{dkim.RecordName(selector, domain): txt}
}

func verifyDKIM(t *testing.T, records map[string]string, msg []byte) []*msgauth.Verification {
	t.Helper()
	vs, err := msgauth.VerifyWithOptions(bytes.NewReader(msg), &msgauth.VerifyOptions{LookupTXT: func(name string) ([]string, error) {
		if v, ok := records[strings.TrimSuffix(name, ".")]; ok {
			return []string{v}, nil
		}
		return nil, errors.New("no record " + name)
	}})
	if err != nil {
		t.Fatalf("go-msgauth: %v", err)
	}
	return vs
}

// rawSMTP is a hand-driven SMTP session without AUTH, as another
// server sending a bounce would hold it.
type rawSMTP struct {
	t *testing.T
	c *textproto.Conn
}

func dialRaw(t *testing.T, addr string) *rawSMTP {
	t.Helper()
	c, err := textproto.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := &rawSMTP{t: t, c: c}
	r.reply()
	r.cmd("EHLO mx.dest.test")
	return r
}

func (r *rawSMTP) reply() string {
	r.t.Helper()
	code, msg, err := r.c.ReadResponse(0)
	if err != nil && code == 0 {
		r.t.Fatal(err)
	}
	return fmt.Sprintf("%d %s", code, msg)
}

func (r *rawSMTP) cmd(line string) string {
	r.t.Helper()
	if err := r.c.PrintfLine("%s", line); err != nil {
		r.t.Fatal(err)
	}
	return r.reply()
}

// send runs one transaction: MAIL FROM:<>, RCPT TO:<rcpt>, and when the
// RCPT is taken, the data; it returns the first reply that was not 2xx
// or 3xx, or the final one.
func (r *rawSMTP) send(rcpt string, data []byte) string {
	r.t.Helper()
	if got := r.cmd("RSET"); !strings.HasPrefix(got, "250") {
		return got
	}
	if got := r.cmd("MAIL FROM:<>"); !strings.HasPrefix(got, "250") {
		return got
	}
	if got := r.cmd("RCPT TO:<" + rcpt + ">"); !strings.HasPrefix(got, "250") {
		return got
	}
	if got := r.cmd("DATA"); !strings.HasPrefix(got, "354") {
		return got
	}
	w := r.c.DotWriter()
	w.Write(bytes.ReplaceAll(bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n")))
	w.Close()
	return r.reply()
}

// handDSN is an RFC 3464 failure report for rcpt written by hand, sent
// to the return path rp.
func handDSN(rp, rcpt string) []byte {
	return []byte("From: Mail Delivery System <MAILER-DAEMON@mx.dest.test>\r\nTo: " + rp + "\r\n" +
		"Subject: Undelivered Mail Returned to Sender\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/report; report-type=delivery-status; boundary=\"r1\"\r\n\r\n" +
		"--r1\r\nContent-Type: text/plain\r\n\r\nThe mailbox does not exist.\r\n" +
		"--r1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.dest.test\r\n\r\n" +
		"Final-Recipient: rfc822; " + rcpt + "\r\nAction: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; mx.dest.test\r\n" +
		"Diagnostic-Code: smtp; 550 5.1.1 <" + rcpt + ">: Recipient address rejected: User unknown\r\n\r\n" +
		"--r1\r\nContent-Type: text/rfc822-headers\r\n\r\nReturn-Path: <" + rp + ">\r\nFrom: news@shop.test\r\n" +
		"Subject: News\r\n\r\n--r1--\r\n")
}

// deliverabilityDaemon runs the daemon relaying to sink with DKIM, a
// bounce domain, unsubscribe links and a webhook.
func deliverabilityDaemon(t *testing.T, sink *smtpsink.Sink, hooks *hookReceiver, keyFile string) *daemonProc {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "outbox.json")
	conf, _ := json.Marshal(map[string]any{"webhooks": []map[string]any{{"url": hooks.srv.URL, "secret": hookSecret}}})
	if err := os.WriteFile(cfg, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, dir, "--relay", "smtp://"+sink.Addr()+"?starttls=off", "--config", cfg,
		"--dkim", "shop.test:s1:"+keyFile, "--bounce-domain", "bounces.shop.test", "--public-url", "https://mail.shop.test")
	if _, err := os.Stat(filepath.Join(dir, "feedback.secret")); err != nil {
		t.Errorf("no generated secret in the data directory: %v", err)
	} else if st, _ := os.Stat(filepath.Join(dir, "feedback.secret")); st.Mode().Perm() != 0o600 {
		t.Errorf("generated secret has mode %v, want 0600", st.Mode().Perm())
	}
	return d
}

func (d *daemonProc) post(t *testing.T, body string) string {
	t.Helper()
	var acc struct{ ID string }
	if code := d.api("POST", "/v1/messages", "application/json", strings.NewReader(body), &acc); code != 202 {
		t.Fatalf("POST /v1/messages %s: HTTP %d", body, code)
	}
	return acc.ID
}

func (d *daemonProc) suppression(t *testing.T, addr string) *api.Suppression {
	t.Helper()
	var page api.SuppressionPage
	if code := d.api("GET", "/v1/suppressions?address="+addr, "", nil, &page); code != 200 {
		t.Fatalf("GET /v1/suppressions: HTTP %d", code)
	}
	for i, s := range page.Suppressions {
		if s.Address == addr {
			return &page.Suppressions[i]
		}
	}
	return nil
}

// TestBounceEndToEnd: the daemon signs and sends a message with a return
// path per recipient; a DSN written by hand and the one Postfix wrote,
// submitted over SMTP without AUTH to those return paths, bounce each
// recipient, suppress it and fire its webhook, and the next message to
// it is suppressed and never reaches the relay. Forged and malformed
// reports are refused and change nothing; no other mail is taken
// without AUTH.
func TestBounceEndToEnd(t *testing.T) {
	sink := startSink(t, smtpsink.Options{})
	hooks := startHooks(t)
	keyFile, records := dkimKey(t, "rsa", "s1", "shop.test")
	d := deliverabilityDaemon(t, sink, hooks, keyFile)

	id := d.post(t, `{"from":"News <news@shop.test>","to":["ann@dest.test","nobody@dest.test","cid@dest.test"],"subject":"News","text":"Hello."}`)
	d.waitStatus(id, queue.StatusDelivered)
	paths := map[string]string{}
	for _, r := range sink.Received() {
		if len(r.To) != 1 || !strings.HasPrefix(r.From, "bounces+") || !strings.HasSuffix(r.From, "@bounces.shop.test") {
			t.Fatalf("transaction from %q to %v: want one recipient each, from its return path", r.From, r.To)
		}
		paths[r.To[0]] = r.From
		if vs := verifyDKIM(t, records, r.Data); len(vs) != 1 || vs[0].Err != nil || vs[0].Domain != "shop.test" {
			t.Errorf("%s: DKIM %+v", r.To[0], vs)
		}
	}
	if len(paths) != 3 {
		t.Fatalf("return paths %v", paths)
	}
	postfix, err := os.ReadFile("../../bounce/testdata/postfix-failed-hdrs.eml")
	if err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, d.smtpAddr)
	for rcpt, report := range map[string][]byte{"ann@dest.test": handDSN(paths["ann@dest.test"], "ann@dest.test"),
		"nobody@dest.test": postfix} {
		if got := c.send(paths[rcpt], report); !strings.HasPrefix(got, "250") {
			t.Fatalf("report for %s: %s", rcpt, got)
		}
	}
	var m api.Message
	d.api("GET", "/v1/messages/"+id, "", nil, &m)
	for _, r := range m.Recipients {
		want := queue.RecipientBounced
		if r.Address == "cid@dest.test" {
			want = queue.RecipientDelivered
		}
		if r.Status != want {
			t.Errorf("%s is %s, want %s (%+v)", r.Address, r.Status, want, r)
		}
	}
	if m.Status != queue.StatusPartial || len(m.History) != 2 || m.History[0].Type != queue.HistoryBounced {
		t.Errorf("message %s, history %+v", m.Status, m.History)
	}
	for _, a := range []string{"ann@dest.test", "nobody@dest.test"} {
		if s := d.suppression(t, a); s == nil || s.Cause != queue.CauseBounced || s.MessageID != id {
			t.Errorf("%s: suppression %+v", a, s)
		}
		if p := hooks.wait(t, webhook.TypeBounced, a); p.MessageID != id || p.SMTP == nil || p.SMTP.EnhancedCode != "5.1.1" {
			t.Errorf("%s: bounced event %+v", a, p)
		}
	}
	// The next message to a bounced address is suppressed, never sent.
	before := len(sink.Received())
	next := d.post(t, `{"from":"news@shop.test","to":["ann@dest.test"],"subject":"Again","text":"Hello again."}`)
	if m := d.waitStatus(next, queue.StatusFailed); m.Recipients[0].Status != queue.RecipientSuppressed {
		t.Errorf("next message's recipient: %+v", m.Recipients[0])
	}
	// Forged and malformed reports, and relaying without AUTH.
	dsn := handDSN(paths["cid@dest.test"], "cid@dest.test")
	forged := strings.Replace(paths["cid@dest.test"], "bounces+", "bounces+b", 1)
	for name, tc := range map[string]struct {
		rcpt string
		data []byte
		want string
	}{
		"bad token":      {forged, dsn, "550 5.7.1"},
		"wrong domain":   {strings.Replace(paths["cid@dest.test"], "bounces.shop.test", "elsewhere.test", 1), dsn, "530"},
		"truncated MIME": {paths["cid@dest.test"], dsn[:len(dsn)/2], "550 5.6.0"},
		"10 MB report": {paths["cid@dest.test"], bytes.Replace(dsn, []byte("--r1--"), append([]byte("--r1\r\nContent-Type: message/rfc822\r\n\r\n"),
			bytes.Repeat([]byte(strings.Repeat("z", 76)+"\r\n"), 10<<20/78)...), 1), "552"},
		"open relay": {"victim@elsewhere.test", []byte("Subject: spam\r\n\r\nbuy\r\n"), "530"},
	} {
		if got := c.send(tc.rcpt, tc.data); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s: %s, want %s", name, got, tc.want)
		}
	}
	c.cmd("QUIT")
	d.api("GET", "/v1/messages/"+id, "", nil, &m)
	if len(m.History) != 2 || m.Recipients[2].Status != queue.RecipientDelivered || d.suppression(t, "cid@dest.test") != nil {
		t.Errorf("refused reports changed something: %+v, history %+v", m.Recipients[2], m.History)
	}
	if got := len(sink.Received()); got != before {
		t.Errorf("the relay received %d more messages: a suppressed address or a relay attempt got through", got-before)
	}
}

var linkRe = regexp.MustCompile(`List-Unsubscribe: <https://mail\.shop\.test(/u/[A-Za-z0-9_-]+)>`)

// TestUnsubscribeEndToEnd: the link in a delivered message's
// List-Unsubscribe field (covered by its DKIM signature) shows a page on
// GET and changes nothing; the exact RFC 8058 POST suppresses the
// recipient for the sender's domain, answers 200 and fires the
// unsubscribed webhook; the next newsletter to it is suppressed.
func TestUnsubscribeEndToEnd(t *testing.T) {
	sink := startSink(t, smtpsink.Options{})
	hooks := startHooks(t)
	keyFile, records := dkimKey(t, "ed25519", "s1", "shop.test")
	d := deliverabilityDaemon(t, sink, hooks, keyFile)
	id := d.post(t, `{"from":"news@shop.test","to":["ann@dest.test"],"subject":"Weekly","text":"News.","unsubscribe":true}`)
	d.waitStatus(id, queue.StatusDelivered)
	got := sink.Received()
	if len(got) != 1 {
		t.Fatalf("relay received %d messages", len(got))
	}
	vs := verifyDKIM(t, records, got[0].Data)
	if len(vs) != 1 || vs[0].Err != nil || !slices.Contains(vs[0].HeaderKeys, "List-Unsubscribe") {
		t.Fatalf("DKIM %+v, want a valid signature over List-Unsubscribe", vs)
	}
	m := linkRe.FindSubmatch(got[0].Data)
	if m == nil || !bytes.Contains(got[0].Data, []byte("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")) {
		t.Fatalf("no one-click fields in\n%.800s", got[0].Data)
	}
	link := "http://" + d.httpAddr + string(m[1]) // the public URL, reached on loopback
	resp, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(page, []byte("ann@dest.test")) || d.suppression(t, "ann@dest.test") != nil {
		t.Fatalf("GET %s: %d, suppressed %v\n%s", link, resp.StatusCode, d.suppression(t, "ann@dest.test"), page)
	}
	req, _ := http.NewRequestWithContext(context.Background(), "POST", link, strings.NewReader("List-Unsubscribe=One-Click"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("RFC 8058 POST: %d", resp.StatusCode)
	}
	if s := d.suppression(t, "ann@dest.test"); s == nil || s.Cause != queue.CauseUnsubscribed || s.Scope != "shop.test" {
		t.Errorf("after the POST: %+v", s)
	}
	if p := hooks.wait(t, webhook.TypeUnsubscribed, "ann@dest.test"); p.Domain != "shop.test" {
		t.Errorf("unsubscribed event %+v", p)
	}
	next := d.post(t, `{"from":"news@shop.test","to":["ann@dest.test"],"subject":"Weekly 2","text":"News."}`)
	if m := d.waitStatus(next, queue.StatusFailed); m.Recipients[0].Status != queue.RecipientSuppressed {
		t.Errorf("next newsletter: %+v", m.Recipients[0])
	}
	// A message that must go through does, and says so in the log.
	reset := d.post(t, `{"from":"news@shop.test","to":["ann@dest.test"],"subject":"Password reset","text":"x","ignore_suppressions":true}`)
	d.waitStatus(reset, queue.StatusDelivered)
	if !strings.Contains(d.logs.String(), "message ignores the suppression list") {
		t.Error("ignore_suppressions is not logged")
	}
}

// TestDSNParametersEndToEnd: RET, ENVID, NOTIFY and ORCPT given at SMTP
// submission, and dsn in JSON, reach a relay that offers DSN.
func TestDSNParametersEndToEnd(t *testing.T) {
	sink := startSink(t, smtpsink.Options{DSN: true})
	d := startDaemon(t, t.TempDir(), "--relay", "smtp://"+sink.Addr()+"?starttls=off")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := osmtp.Dial(ctx, d.smtpAddr, &osmtp.Options{StartTLS: osmtp.TLSRequired, TLSConfig: insecureTLS,
		Username: smtpUser, Password: smtpPass})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.SendAndQuit(ctx, &osmtp.Envelope{From: "app@shop.test", Recipients: []string{"a@dest.test", "b@dest.test"},
		DSNReturn: osmtp.DSNReturnHeaders, EnvID: "smtp env 1", RcptNotify: [][]string{{"FAILURE", "DELAY"}, {"NEVER"}},
		ORcpt: []string{"orig-a@dest.test"}}, strings.NewReader("From: app@shop.test\r\nSubject: dsn\r\n\r\nhi\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	d.post(t, `{"from":"app@shop.test","to":["j@dest.test"],"subject":"json dsn","text":"x","dsn":{"notify":["success"],"ret":"full","envid":"json-1"}}`)
	if n := sink.WaitFor(2, 20*time.Second); n != 2 {
		t.Fatalf("relay received %d messages", n)
	}
	for _, r := range sink.Received() {
		switch r.To[0] {
		case "a@dest.test":
			want := smtpsink.DSN{Return: "HDRS", EnvID: "smtp env 1", Notify: [][]string{{"FAILURE", "DELAY"}, {"NEVER"}},
				ORcpt: []string{"orig-a@dest.test", ""}}
			if fmt.Sprint(r.DSN) != fmt.Sprint(want) {
				t.Errorf("SMTP submission's DSN reached the relay as %+v, want %+v", r.DSN, want)
			}
		case "j@dest.test":
			if r.DSN.Return != "FULL" || r.DSN.EnvID != "json-1" || fmt.Sprint(r.DSN.Notify) != "[[SUCCESS]]" {
				t.Errorf("JSON dsn reached the relay as %+v", r.DSN)
			}
		}
	}
}
