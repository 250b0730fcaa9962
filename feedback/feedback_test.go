package feedback_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/bounce"
	"github.com/outbox-mail/outbox/feedback"
	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/queue/sqlite"
	"github.com/outbox-mail/outbox/unsubscribe"
)

var secret = bytes.Repeat([]byte("s"), 32)

type fixture struct {
	st     *sqlite.Store
	h      *feedback.Handler
	verp   *bounce.VERP
	tokens *unsubscribe.Tokens
}

func setup(t testing.TB) *fixture {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "outbox.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	verp, err := bounce.NewVERP("bounces.shop.test", secret)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := unsubscribe.New(secret)
	if err != nil {
		t.Fatal(err)
	}
	h, err := feedback.New(feedback.Config{Store: st, VERP: verp, Tokens: tokens,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{st: st, h: h, verp: verp, tokens: tokens}
}

// delivered stores a message from news@shop.test to rcpts, all delivered.
func (f *fixture) delivered(t testing.TB, rcpts ...string) string {
	t.Helper()
	ctx := context.Background()
	id, err := f.st.Enqueue(ctx, queue.NewMessage{From: "news@shop.test", Recipients: rcpts,
		Body: strings.NewReader("From: news@shop.test\r\nSubject: s\r\n\r\nhi\r\n")})
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.st.Claim(ctx, "w", 10, time.Minute)
	if err != nil || len(c) != 1 {
		t.Fatalf("Claim: %v %v", c, err)
	}
	res := queue.Result{MessageID: id}
	for _, r := range rcpts {
		res.Recipients = append(res.Recipients, queue.RecipientResult{Address: r, Status: queue.RecipientDelivered, Code: 250})
	}
	if _, err := f.st.Complete(ctx, "w", []queue.Result{res}); err != nil {
		t.Fatal(err)
	}
	return id
}

func (f *fixture) returnPath(t testing.TB, id string, idx int) string {
	t.Helper()
	rp, err := f.verp.ReturnPath(id, idx)
	if err != nil {
		t.Fatal(err)
	}
	return rp
}

// handDSN is an RFC 3464 report written by hand: action, status and
// diagnostic for finalRcpt, sent to rp.
func handDSN(rp, finalRcpt, action, status, diag string) string {
	return fmt.Sprintf("From: Mail Delivery System <MAILER-DAEMON@mx.dest.test>\r\nTo: %s\r\n"+
		"Subject: Delivery Status Notification\r\nMIME-Version: 1.0\r\n"+
		"Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r\n\r\n"+
		"--b1\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"+
		"--b1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.dest.test\r\n\r\n"+
		"Final-Recipient: rfc822; %s\r\nAction: %s\r\nStatus: %s\r\nDiagnostic-Code: smtp; %s\r\n\r\n"+
		"--b1\r\nContent-Type: text/rfc822-headers\r\n\r\nReturn-Path: <%s>\r\nFrom: news@shop.test\r\nSubject: s\r\n\r\n--b1--\r\n",
		rp, finalRcpt, action, status, diag, rp)
}

func testdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "bounce", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func recipient(t *testing.T, st queue.Store, id, addr string) queue.Recipient {
	t.Helper()
	m, err := st.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range m.Recipients {
		if r.Address == addr {
			return r
		}
	}
	t.Fatalf("no recipient %s", addr)
	return queue.Recipient{}
}

// TestReports: a hand-written DSN and the one Postfix wrote bounce the
// recipient their return path names and suppress it; a delay is history;
// a complaint suppresses for the sender's domain; an automatic reply is
// dropped; nothing else changes.
func TestReports(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	id := f.delivered(t, "ann@dest.test", "nobody@dest.test", "carol@slow.dest.test", "dee@dest.test", "eve@dest.test")
	for _, tc := range []struct {
		idx  int
		body []byte
	}{
		{0, []byte(handDSN(f.returnPath(t, id, 0), "ann@dest.test", "failed", "5.1.1", "550 5.1.1 <ann@dest.test>: no such user"))},
		{1, testdata(t, "postfix-failed-hdrs.eml")},
		{2, testdata(t, "postfix-delayed.eml")},
		{3, testdata(t, "arf.eml")},
		{4, testdata(t, "not-autoreply.eml")},
	} {
		rp := f.returnPath(t, id, tc.idx)
		if err := f.h.CheckRecipient(rp); err != nil {
			t.Fatalf("CheckRecipient(%s): %v", rp, err)
		}
		if err := f.h.Receive(ctx, []string{rp}, bytes.NewReader(tc.body)); err != nil {
			t.Fatalf("report #%d: %v", tc.idx, err)
		}
	}
	ann := recipient(t, f.st, id, "ann@dest.test")
	if ann.Status != queue.RecipientBounced || ann.Code != 550 || ann.EnhancedCode != "5.1.1" || !strings.Contains(ann.Text, "no such user") {
		t.Errorf("ann after a DSN: %+v", ann)
	}
	nobody := recipient(t, f.st, id, "nobody@dest.test")
	if nobody.Status != queue.RecipientBounced || nobody.EnhancedCode != "5.1.1" || !strings.Contains(nobody.Text, "User unknown") {
		t.Errorf("nobody after Postfix's DSN: %+v", nobody)
	}
	for _, a := range []string{"carol@slow.dest.test", "dee@dest.test", "eve@dest.test"} {
		if r := recipient(t, f.st, id, a); r.Status != queue.RecipientDelivered {
			t.Errorf("%s is %s, want still delivered", a, r.Status)
		}
	}
	for _, a := range []string{"ann@dest.test", "nobody@dest.test"} {
		if s, err := f.st.LookupSuppression(ctx, a, "other.test"); err != nil || s.Cause != queue.CauseBounced || s.MessageID != id {
			t.Errorf("%s: suppression %+v, %v", a, s, err)
		}
	}
	if s, err := f.st.LookupSuppression(ctx, "dee@dest.test", "shop.test"); err != nil || s.Cause != queue.CauseComplained {
		t.Errorf("dee (complained): %+v, %v", s, err)
	}
	for _, a := range []string{"carol@slow.dest.test", "eve@dest.test"} {
		if _, err := f.st.LookupSuppression(ctx, a, "shop.test"); !errors.Is(err, queue.ErrNotFound) {
			t.Errorf("%s suppressed: %v", a, err)
		}
	}
	h, err := f.st.History(ctx, id)
	if err != nil || len(h) != 4 {
		t.Fatalf("history %+v, %v; want bounced, bounced, delayed, complained", h, err)
	}
	want := []queue.HistoryType{queue.HistoryBounced, queue.HistoryBounced, queue.HistoryDelayed, queue.HistoryComplained}
	for i, e := range h {
		if e.Type != want[i] {
			t.Errorf("history[%d] = %s %s, want %s", i, e.Type, e.Address, want[i])
		}
	}
	if m, _ := f.st.Get(ctx, id); m.Status != queue.StatusPartial {
		t.Errorf("message status %s, want partial", m.Status)
	}
}

// TestRefused: forged and malformed reports are refused with an error
// that says which, and record nothing.
func TestRefused(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	id := f.delivered(t, "ann@dest.test")
	rp := f.returnPath(t, id, 0)
	forged := strings.Replace(rp, "bounces+", "bounces+a", 1)
	other, _ := bounce.NewVERP("bounces.shop.test", bytes.Repeat([]byte("x"), 32))
	otherRP, _ := other.ReturnPath(id, 0)
	for _, a := range []string{forged, otherRP} {
		if err := f.h.CheckRecipient(a); !errors.Is(err, bounce.ErrBadToken) {
			t.Errorf("CheckRecipient(%s) = %v, want ErrBadToken", a, err)
		}
	}
	for _, a := range []string{"postmaster@bounces.shop.test", "bounces@bounces.shop.test"} {
		if err := f.h.CheckRecipient(a); !errors.Is(err, bounce.ErrNotVERP) {
			t.Errorf("CheckRecipient(%s) = %v, want ErrNotVERP", a, err)
		}
	}
	dsn := handDSN(rp, "ann@dest.test", "failed", "5.1.1", "550 5.1.1 no such user")
	for name, tc := range map[string]struct {
		body string
		want error
	}{
		"truncated MIME": {dsn[:len(dsn)*2/3], bounce.ErrMalformed},
		"no status part": {strings.Replace(dsn, "message/delivery-status", "text/plain", 1), bounce.ErrMalformed},
		"10 MB report":   {strings.Replace(dsn, "--b1--", strings.Repeat(strings.Repeat("x", 76)+"\r\n", 10<<20/78)+"--b1--", 1), bounce.ErrTooLarge},
	} {
		if err := f.h.Receive(ctx, []string{rp}, strings.NewReader(tc.body)); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	if r := recipient(t, f.st, id, "ann@dest.test"); r.Status != queue.RecipientDelivered {
		t.Errorf("ann is %s after refused reports", r.Status)
	}
	if h, _ := f.st.History(ctx, id); len(h) != 0 {
		t.Errorf("history %+v after refused reports", h)
	}
	if _, err := f.st.LookupSuppression(ctx, "ann@dest.test", ""); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("suppressed after refused reports: %v", err)
	}
}

// TestUnsubscribe: a one-click token suppresses what it names for the
// domain it names, once; mail to an unsubscribe address does the same
// for its recipient and the message's sender domain; a bad token
// changes nothing.
func TestUnsubscribe(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	tok, err := f.tokens.Token(unsubscribe.Subscription{Domain: "shop.test", Address: "ann@dest.test", Issued: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if sub, err := f.h.Subscription(tok); err != nil || sub.Address != "ann@dest.test" {
		t.Fatalf("Subscription: %+v, %v", sub, err)
	}
	if _, err := f.st.LookupSuppression(ctx, "ann@dest.test", "shop.test"); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("Subscription changed something: %v", err)
	}
	for range 2 {
		if _, err := f.h.Unsubscribe(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	s, err := f.st.LookupSuppression(ctx, "ann@dest.test", "shop.test")
	if err != nil || s.Cause != queue.CauseUnsubscribed || s.Scope != "shop.test" {
		t.Errorf("after one-click: %+v, %v", s, err)
	}
	if _, err := f.st.LookupSuppression(ctx, "ann@dest.test", "other.test"); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("unsubscribing from shop.test stopped other.test: %v", err)
	}
	if _, err := f.h.Unsubscribe(ctx, tok[:len(tok)-2]+"AA"); !errors.Is(err, unsubscribe.ErrBadToken) {
		t.Errorf("a changed token: %v", err)
	}

	id := f.delivered(t, "bob@dest.test", "cid@dest.test")
	ua, err := f.verp.UnsubscribeAddress(id, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.h.CheckRecipient(ua); err != nil {
		t.Fatalf("CheckRecipient(%s): %v", ua, err)
	}
	if err := f.h.Receive(ctx, []string{ua}, strings.NewReader("Subject: unsubscribe\r\n\r\nplease\r\n")); err != nil {
		t.Fatal(err)
	}
	if s, err := f.st.LookupSuppression(ctx, "cid@dest.test", "shop.test"); err != nil || s.MessageID != id {
		t.Errorf("mail to the unsubscribe address: %+v, %v", s, err)
	}
	if _, err := f.st.LookupSuppression(ctx, "bob@dest.test", "shop.test"); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("bob unsubscribed by cid's address: %v", err)
	}
}
