package submission

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/bounce"
	"github.com/outbox-mail/outbox/feedback"
	"github.com/outbox-mail/outbox/queue"
)

const bounceDomain = "bounces.shop.test"

// feedbackFixture is a server that is not on loopback (so AUTH is
// required for anything else) with a bounce domain handled by a real
// feedback.Handler on the fixture's store, and one delivered message to
// bounce.
type feedbackFixture struct {
	*fixture
	verp *bounce.VERP
	id   string
}

func newFeedbackFixture(t *testing.T) *feedbackFixture {
	t.Helper()
	verp, err := bounce.NewVERP(bounceDomain, bytes.Repeat([]byte("k"), 32))
	if err != nil {
		t.Fatal(err)
	}
	ff := &feedbackFixture{verp: verp}
	ff.fixture = newFixture(t, func(c *Config) {
		c.isLoopback = func(local, remote net.Addr) bool { return false }
	})
	h, err := feedback.New(feedback.Config{Store: ff.store, VERP: verp, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ff.srv.cfg.Inbound = h
	ctx := context.Background()
	ff.id, err = ff.store.Enqueue(ctx, queue.NewMessage{From: "news@shop.test", Recipients: []string{"ann@dest.test", "bob@dest.test"},
		Body: strings.NewReader("From: news@shop.test\r\nSubject: s\r\n\r\nhi\r\n")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ff.store.Claim(ctx, "w", 1, time.Minute); err != nil {
		t.Fatal(err)
	}
	_, err = ff.store.Complete(ctx, "w", []queue.Result{{MessageID: ff.id, Recipients: []queue.RecipientResult{
		{Address: "ann@dest.test", Status: queue.RecipientDelivered, Code: 250},
		{Address: "bob@dest.test", Status: queue.RecipientDelivered, Code: 250}}}})
	if err != nil {
		t.Fatal(err)
	}
	return ff
}

func (ff *feedbackFixture) returnPath(idx int) string {
	rp, err := ff.verp.ReturnPath(ff.id, idx)
	if err != nil {
		ff.t.Fatal(err)
	}
	return rp
}

// dsn is an RFC 3464 report for rcpt, written by hand.
func dsn(rp, rcpt string) string {
	return "From: MAILER-DAEMON@mx.dest.test\r\nTo: " + rp + "\r\nSubject: failure\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/report; report-type=delivery-status; boundary=\"x\"\r\n\r\n" +
		"--x\r\nContent-Type: text/plain\r\n\r\nUndeliverable.\r\n" +
		"--x\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.dest.test\r\n\r\n" +
		"Final-Recipient: rfc822; " + rcpt + "\r\nAction: failed\r\nStatus: 5.1.1\r\n" +
		"Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n\r\n--x--\r\n"
}

func (ff *feedbackFixture) status(addr string) queue.RecipientStatus {
	ff.t.Helper()
	m, _ := ff.message(ff.id)
	for _, r := range m.Recipients {
		if r.Address == addr {
			return r.Status
		}
	}
	ff.t.Fatalf("no recipient %s", addr)
	return ""
}

// TestBounceDomainWithoutAuth: anyone may send a report to a return
// path without AUTH; it bounces the recipient the path names and goes
// nowhere near the queue. Without AUTH nothing else is taken: not
// another domain, not a return path of another domain, and not another
// recipient in the same transaction.
func TestBounceDomainWithoutAuth(t *testing.T) {
	ff := newFeedbackFixture(t)
	c := ff.dial()
	c.must("EHLO mx.dest.test", 250)
	c.must("MAIL FROM:<>", 250)
	c.must("RCPT TO:<"+ff.returnPath(0)+">", 250)
	if code, msg := c.cmd("RCPT TO:<victim@elsewhere.test>"); code != 530 {
		t.Errorf("unauthenticated RCPT to another domain: %d %s, want 530", code, msg)
	}
	if code, msg := c.data(dsn(ff.returnPath(0), "ann@dest.test")); code != 250 || !strings.Contains(msg, "report received") {
		t.Fatalf("report: %d %s", code, msg)
	}
	if st := ff.status("ann@dest.test"); st != queue.RecipientBounced {
		t.Errorf("ann is %s after the report, want bounced", st)
	}
	if st := ff.status("bob@dest.test"); st != queue.RecipientDelivered {
		t.Errorf("bob is %s, want delivered", st)
	}
	if n := ff.stored(); n != 1 {
		t.Errorf("the store holds %d messages: the report was queued", n)
	}
	// Open relay checks, each in a fresh transaction.
	for _, rcpt := range []string{"victim@elsewhere.test", "bounces+" + strings.Split(ff.returnPath(1), "+")[1][:20] + "@elsewhere.test",
		"postmaster@shop.test"} {
		c.must("RSET", 250)
		c.must("MAIL FROM:<spammer@evil.test>", 250)
		if code, msg := c.cmd("RCPT TO:<" + rcpt + ">"); code != 530 {
			t.Errorf("unauthenticated RCPT TO:<%s>: %d %s, want 530", rcpt, code, msg)
		}
		if code, _ := c.cmd("DATA"); code/100 == 3 {
			t.Fatalf("DATA accepted with no recipient for %s", rcpt)
		}
	}
	c.must("QUIT", 221)
	if n := ff.stored(); n != 1 {
		t.Errorf("the store holds %d messages after relay attempts", n)
	}
}

// TestBounceDomainRefusals: forged addresses, other local parts of the
// domain, malformed and oversized reports are refused with a reply that
// says which, and change nothing; an automatic reply is taken and
// dropped.
func TestBounceDomainRefusals(t *testing.T) {
	ff := newFeedbackFixture(t)
	rp := ff.returnPath(0)
	forged := strings.Replace(rp, "bounces+", "bounces+a", 1)
	c := ff.dial()
	c.must("EHLO mx.dest.test", 250)
	c.must("MAIL FROM:<>", 250)
	for rcpt, want := range map[string]string{forged: "550 5.7.1", "postmaster@" + bounceDomain: "550 5.1.1",
		"bounces@" + strings.ToUpper(bounceDomain): "550 5.1.1"} {
		code, msg := c.cmd("RCPT TO:<" + rcpt + ">")
		if got := fmt.Sprint(code, " ", msg); !strings.HasPrefix(got, want) {
			t.Errorf("RCPT TO:<%s>: %s, want %s", rcpt, got, want)
		}
	}
	report := dsn(rp, "ann@dest.test")
	for name, tc := range map[string]struct {
		body string
		want string
	}{
		"truncated MIME": {report[:len(report)/2], "550 5.6.0"},
		"garbage":        {"Subject: x\r\nContent-Type: multipart/report; report-type=delivery-status\r\n\r\nno boundary\r\n", "550 5.6.0"},
		"10 MB report": {strings.Replace(report, "--x--", "--x\r\nContent-Type: message/rfc822\r\n\r\nSubject: big\r\n\r\n"+
			strings.Repeat(strings.Repeat("y", 76)+"\r\n", 10<<20/78)+"--x--", 1), "552 5.3.4"},
		"auto-reply": {"From: ann@dest.test\r\nSubject: Out of office\r\nAuto-Submitted: auto-replied\r\n\r\nAway.\r\n", "250 2.0.0"},
	} {
		c.must("RSET", 250)
		c.must("MAIL FROM:<>", 250)
		c.must("RCPT TO:<"+rp+">", 250)
		code, msg := c.data(tc.body)
		if got := fmt.Sprint(code, " ", msg); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s: %s, want %s", name, got, tc.want)
		}
	}
	c.must("RSET", 250)
	if code, msg := c.cmd("MAIL FROM:<> SIZE=10485760"); code != 552 {
		t.Errorf("MAIL with SIZE over the reports' limit: %d %s, want 552", code, msg)
	}
	c.must("QUIT", 221)
	if st := ff.status("ann@dest.test"); st != queue.RecipientDelivered {
		t.Errorf("ann is %s after refused reports, want delivered", st)
	}
	if h, err := ff.store.History(context.Background(), ff.id); err != nil || len(h) != 0 {
		t.Errorf("history %+v, %v after refused reports", h, err)
	}
	if n := ff.stored(); n != 1 {
		t.Errorf("the store holds %d messages", n)
	}
}

// TestBounceDomainOwnTransaction: an authenticated client sending to a
// return path goes to the bounce handler too, and the two kinds of
// recipients never share a transaction.
func TestBounceDomainOwnTransaction(t *testing.T) {
	ff := newFeedbackFixture(t)
	c := ff.dial()
	c.must("EHLO client.test", 250)
	c.startTLS(ff.clientTLS())
	c.must("EHLO client.test", 250)
	c.must(authPlain(testUser, testPass), 235)
	c.must("MAIL FROM:<app@shop.test>", 250)
	c.must("RCPT TO:<friend@dest.test>", 250)
	if code, _ := c.cmd("RCPT TO:<" + ff.returnPath(1) + ">"); code != 452 {
		t.Errorf("a return path after a queue recipient: %d, want 452", code)
	}
	c.must("RSET", 250)
	c.must("MAIL FROM:<>", 250)
	c.must("RCPT TO:<"+ff.returnPath(1)+">", 250)
	if code, _ := c.cmd("RCPT TO:<friend@dest.test>"); code != 452 {
		t.Errorf("a queue recipient after a return path: %d, want 452", code)
	}
	if code, msg := c.data(dsn(ff.returnPath(1), "bob@dest.test")); code != 250 {
		t.Fatalf("report: %d %s", code, msg)
	}
	if st := ff.status("bob@dest.test"); st != queue.RecipientBounced {
		t.Errorf("bob is %s, want bounced", st)
	}
}

// TestDSNParametersKept: the listener offers DSN, and RET, ENVID,
// NOTIFY and ORCPT are stored with the message as typed fields.
func TestDSNParametersKept(t *testing.T) {
	f := newFixture(t, nil)
	c := f.dial()
	if ehlo := c.must("EHLO client.test", 250); !strings.Contains(ehlo, "DSN") {
		t.Errorf("EHLO does not offer DSN:\n%s", ehlo)
	}
	c.must(authPlain(testUser, testPass), 235)
	c.must("MAIL FROM:<app@shop.test> RET=HDRS ENVID=order+2B42", 250)
	c.must("RCPT TO:<a@dest.test> NOTIFY=FAILURE,DELAY ORCPT=rfc822;A+40orig.test", 250)
	c.must("RCPT TO:<b@dest.test>", 250)
	c.must("RCPT TO:<c@dest.test> NOTIFY=NEVER", 250)
	code, msg := c.data(dated + "Subject: dsn\r\n\r\nhi\r\n")
	if code != 250 {
		t.Fatalf("DATA: %d %s", code, msg)
	}
	m, _ := f.message(queuedID(t, msg))
	if m.DSN != (queue.DSN{Return: queue.DSNReturnHeaders, EnvID: "order+42"}) {
		t.Errorf("DSN %+v", m.DSN)
	}
	want := []queue.RecipientDSN{{Notify: []string{"FAILURE", "DELAY"}, ORcpt: "A@orig.test"}, {}, {Notify: []string{"NEVER"}}}
	for i, r := range m.Recipients {
		if !reflect.DeepEqual(r.DSN, want[i]) {
			t.Errorf("%s: DSN %+v, want %+v", r.Address, r.DSN, want[i])
		}
	}
}
