package delivery_test

import (
	"bytes"
	"context"

	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	msgauth "github.com/emersion/go-msgauth/dkim"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/outbox-mail/outbox/bounce"
	"github.com/outbox-mail/outbox/delivery"
	"github.com/outbox-mail/outbox/dkim"
	"github.com/outbox-mail/outbox/internal/smtpsink"
	"github.com/outbox-mail/outbox/message"
	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/unsubscribe"
)

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

// testKeys returns an RSA-2048 key (made once: it takes a while on a busy
// machine) and a fresh Ed25519 key.
func testKeys(t testing.TB) (*rsa.PrivateKey, ed25519.PrivateKey) {
	rsaOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		rsaKey = k
	})
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return rsaKey, ed
}

// keyring is a signer and the DNS records that publish its keys.
type keyring struct {
	signer *dkim.Signer
	txt    map[string]string
}

func newKeyring(t testing.TB, keys ...dkim.Key) *keyring {
	t.Helper()
	s, err := dkim.NewSigner(keys...)
	if err != nil {
		t.Fatal(err)
	}
	kr := &keyring{signer: s, txt: map[string]string{}}
	for _, k := range keys {
		v, err := dkim.TXTRecord(k.Signer.Public())
		if err != nil {
			t.Fatal(err)
		}
		kr.txt[dkim.RecordName(k.Selector, k.Domain)] = v
	}
	return kr
}

// verify checks msg's signatures with go-msgauth, an independent
// implementation, against the keyring's records.
func (kr *keyring) verify(t *testing.T, msg []byte) []*msgauth.Verification {
	t.Helper()
	vs, err := msgauth.VerifyWithOptions(bytes.NewReader(msg), &msgauth.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) {
			if v, ok := kr.txt[strings.TrimSuffix(name, ".")]; ok {
				return []string{v}, nil
			}
			return nil, errors.New("no such record: " + name)
		}})
	if err != nil {
		t.Fatalf("go-msgauth: %v", err)
	}
	return vs
}

// multipartMessage composes a message with a non-ASCII subject and
// name, an HTML alternative and an attachment.
func multipartMessage(t testing.TB, from string, to ...string) []byte {
	t.Helper()
	m := &message.Message{From: message.Address{Name: "Grüße Shop", Email: from}, Subject: "Ihre Bestellung — Grüße ✓",
		Text: "Hallo,\n\nIhre Bestellung ist unterwegs.\n", HTML: "<p>Hallo, <b>Grüße</b></p>",
		Attachments: []message.Attachment{{Filename: "rechnung.pdf", Content: bytes.NewReader(bytes.Repeat([]byte{0, 1, 2, 0xff}, 5000))}}}
	for _, a := range to {
		m.To = append(m.To, message.Address{Email: a})
	}
	var buf bytes.Buffer
	if _, err := m.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func enqueueRaw(t testing.TB, st queue.Store, nm queue.NewMessage, raw []byte) string {
	t.Helper()
	nm.Body = bytes.NewReader(raw)
	if nm.ExpiresAt.IsZero() {
		nm.ExpiresAt = time.Now().Add(time.Hour)
	}
	id, err := st.Enqueue(context.Background(), nm)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// received returns what sink got for the message whose Message-ID or
// envelope names it, failing if it got nothing within the wait.
func waitReceived(t *testing.T, sink *smtpsink.Sink, n int) []smtpsink.Received {
	t.Helper()
	if got := sink.WaitFor(n, 15*time.Second); got < n {
		t.Fatalf("sink received %d messages, want %d", got, n)
	}
	return sink.Received()
}

// TestDKIMSignsAtDelivery: a multipart message with an attachment and
// non-ASCII header fields, From a domain with an RSA and an Ed25519 key
// (dual signing), arrives with two signatures that go-msgauth verifies,
// whether the engine read the body from the store (a claim) or had it in
// memory (an Offer); the bytes after the signatures are the stored ones.
// One changed byte breaks both; mail from a domain without a key and mail
// that cannot be signed go out unsigned.
func TestDKIMSignsAtDelivery(t *testing.T) {
	rk, ek := testKeys(t)
	kr := newKeyring(t, dkim.Key{Domain: "shop.test", Selector: "r1", Signer: rk},
		dkim.Key{Domain: "shop.test", Selector: "e1", Signer: ek})
	st := openStore(t)
	sink := startSink(t, smtpsink.Options{})
	d := startDeliverer(t, delivery.Config{Store: st, Transport: relayTo(t, sink.Addr()), Retry: fastRetry,
		Deliverability: delivery.Deliverability{DKIM: kr.signer}})

	raw := multipartMessage(t, "orders@mail.shop.test", "ann@dest.test")
	enqueueRaw(t, st, queue.NewMessage{From: "orders@mail.shop.test", Recipients: []string{"ann@dest.test"}}, raw)
	if !d.Reserve() {
		t.Fatal("Reserve refused")
	}
	e, err := st.EnqueueLeased(context.Background(), queue.NewMessage{From: "orders@mail.shop.test",
		Recipients: []string{"bob@dest.test"}, Body: bytes.NewReader(raw), ExpiresAt: time.Now().Add(time.Hour)}, d.Owner(), d.Lease())
	if err != nil || e.Claimed == nil || e.Body == nil {
		t.Fatalf("EnqueueLeased: %+v, %v", e, err)
	}
	if err := d.Offer(e.Claimed, e.Body); err != nil {
		t.Fatal(err)
	}
	other := []byte("From: someone@other.test\r\nTo: cid@dest.test\r\nSubject: unsigned\r\n\r\nno key for other.test\r\n")
	enqueueRaw(t, st, queue.NewMessage{From: "someone@other.test", Recipients: []string{"cid@dest.test"}}, other)
	noFrom := []byte("To: dee@dest.test\r\nSubject: no From\r\n\r\nunsignable\r\n")
	enqueueRaw(t, st, queue.NewMessage{From: "orders@shop.test", Recipients: []string{"dee@dest.test"}}, noFrom)

	for _, r := range waitReceived(t, sink, 4) {
		switch r.To[0] {
		case "ann@dest.test", "bob@dest.test":
			if !bytes.HasSuffix(r.Data, raw) {
				t.Errorf("%s: the signed message does not end with the stored bytes", r.To[0])
			}
			vs := kr.verify(t, r.Data)
			if len(vs) != 2 {
				t.Fatalf("%s: %d signatures, want 2 (RSA and Ed25519)", r.To[0], len(vs))
			}
			for _, v := range vs {
				if v.Err != nil || v.Domain != "shop.test" {
					t.Errorf("%s: signature of %s: %v", r.To[0], v.Domain, v.Err)
				}
			}
			tampered := bytes.Replace(r.Data, []byte("unterwegs"), []byte("unterwegz"), 1)
			if bytes.Equal(tampered, r.Data) {
				tampered = append(bytes.Clone(r.Data[:len(r.Data)-3]), 'X', '\r', '\n')
			}
			for _, v := range kr.verify(t, tampered) {
				if v.Err == nil {
					t.Errorf("%s: a changed body still verifies", r.To[0])
				}
			}
		case "cid@dest.test", "dee@dest.test":
			if bytes.Contains(r.Data, []byte("DKIM-Signature")) {
				t.Errorf("%s: signed, want unsigned", r.To[0])
			}
		}
	}
	waitSettled(t, st, 10*time.Second)
}

// TestVERPAndUnsubscribePerRecipient: with a bounce domain and
// unsubscribe links, each recipient of a message that asks for links
// gets a transaction of its own whose return path names it and a
// List-Unsubscribe field with its own token, all under a DKIM signature
// that go-msgauth verifies; its DSN parameters stay its own. A message
// that asks for no link gets none; the null sender stays null.
func TestVERPAndUnsubscribePerRecipient(t *testing.T) {
	rk, _ := testKeys(t)
	kr := newKeyring(t, dkim.Key{Domain: "shop.test", Selector: "s", Signer: rk})
	secret := bytes.Repeat([]byte("v"), 32)
	verp, err := bounce.NewVERP("bounces.shop.test", secret)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := unsubscribe.New(secret)
	if err != nil {
		t.Fatal(err)
	}
	st := openStore(t)
	sink := startSink(t, smtpsink.Options{DSN: true})
	startDeliverer(t, delivery.Config{Store: st, Transport: relayTo(t, sink.Addr()), Retry: fastRetry,
		Deliverability: delivery.Deliverability{DKIM: kr.signer, VERP: verp,
			Unsubscribe: &delivery.UnsubscribeLinks{Tokens: tokens, BaseURL: "https://mail.shop.test/", Mailto: true}}})

	to := []string{"ann@dest.test", "bob@dest.test", "cid@dest.test"}
	raw := multipartMessage(t, "news@shop.test", to...)
	id := enqueueRaw(t, st, queue.NewMessage{From: "news@shop.test", Recipients: to,
		RecipientDSN: []queue.RecipientDSN{{Notify: []string{"FAILURE"}}, {}, {Notify: []string{"FAILURE", "DELAY"}, ORcpt: "c@orig.test"}},
		Flags:        queue.Flags{Unsubscribe: true, DSN: queue.DSN{Return: queue.DSNReturnHeaders, EnvID: "env-7"}}}, raw)
	plain := enqueueRaw(t, st, queue.NewMessage{From: "news@shop.test", Recipients: []string{"dee@dest.test", "eve@dest.test"}},
		[]byte("From: news@shop.test\r\nSubject: no links\r\n\r\nhi\r\n"))
	enqueueRaw(t, st, queue.NewMessage{From: "", Recipients: []string{"x@dest.test", "y@dest.test"}},
		[]byte("From: mailer-daemon@shop.test\r\nSubject: null sender\r\n\r\nhi\r\n"))

	linkRe := regexp.MustCompile(`List-Unsubscribe: <https://mail\.shop\.test/u/([A-Za-z0-9_-]+)>,\s+<mailto:(unsubscribe\+[a-z0-9]+@bounces\.shop\.test)>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n`)
	got := map[string]smtpsink.Received{}
	for _, r := range waitReceived(t, sink, 6) {
		if r.From == "" {
			if len(r.To) != 2 {
				t.Errorf("null-sender mail split: %v", r.To)
			}
			continue
		}
		if len(r.To) != 1 {
			t.Fatalf("a transaction for %v, want one recipient each", r.To)
		}
		got[r.To[0]] = r
	}
	for i, a := range to {
		r, ok := got[a]
		if !ok {
			t.Fatalf("%s received nothing", a)
		}
		gotID, idx, err := verp.Parse(r.From)
		if err != nil || gotID != id || idx != i {
			t.Errorf("%s: return path %q names %s #%d (%v)", a, r.From, gotID, idx, err)
		}
		m := linkRe.FindSubmatch(r.Data)
		if m == nil {
			t.Fatalf("%s: no List-Unsubscribe fields in\n%.600s", a, r.Data)
		}
		sub, err := tokens.Parse(string(m[1]))
		if err != nil || sub.Domain != "shop.test" || sub.Address != a {
			t.Errorf("%s: token names %+v (%v)", a, sub, err)
		}
		if mid, midx, err := verp.ParseUnsubscribe(string(m[2])); err != nil || mid != id || midx != i {
			t.Errorf("%s: mailto %s names %s #%d (%v)", a, m[2], mid, midx, err)
		}
		vs := kr.verify(t, r.Data)
		if len(vs) != 1 || vs[0].Err != nil || !slices.Contains(vs[0].HeaderKeys, "List-Unsubscribe") ||
			!slices.Contains(vs[0].HeaderKeys, "List-Unsubscribe-Post") {
			t.Errorf("%s: signature %+v (%v), want it over List-Unsubscribe and List-Unsubscribe-Post", a, vs[0], vs[0].Err)
		}
		if r.DSN.Return != "HDRS" || r.DSN.EnvID != "env-7" {
			t.Errorf("%s: RET %q ENVID %q", a, r.DSN.Return, r.DSN.EnvID)
		}
	}
	if n := got["bob@dest.test"].DSN.Notify; len(n) != 1 || n[0] != nil {
		t.Errorf("bob's NOTIFY %q, want none", n)
	}
	if c := got["cid@dest.test"].DSN; !slices.Equal(c.Notify[0], []string{"FAILURE", "DELAY"}) || c.ORcpt[0] != "c@orig.test" {
		t.Errorf("cid's NOTIFY %q ORCPT %q", c.Notify, c.ORcpt)
	}
	for _, a := range []string{"dee@dest.test", "eve@dest.test"} {
		r := got[a]
		if _, _, err := verp.Parse(r.From); err != nil {
			t.Errorf("%s: return path %q: %v", a, r.From, err)
		}
		if bytes.Contains(r.Data, []byte("List-Unsubscribe")) {
			t.Errorf("%s: List-Unsubscribe in a message that asked for none", a)
		}
	}
	waitStatus(t, st, id, queue.StatusDelivered)
	waitStatus(t, st, plain, queue.StatusDelivered)
}

// TestHardBounceAtRcptSuppresses: the next hop refusing an address at
// RCPT with 550 5.1.1 puts it on the suppression list; a 5.7.1 policy
// refusal does not, and neither does the same 5.1.1 given after the data.
func TestHardBounceAtRcptSuppresses(t *testing.T) {
	st := openStore(t)
	sink := startSink(t, smtpsink.Options{
		Rcpt: func(to string) error {
			switch to {
			case "gone@dest.test":
				return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
			case "blocked@dest.test":
				return &gosmtp.SMTPError{Code: 554, EnhancedCode: gosmtp.EnhancedCode{5, 7, 1}, Message: "client host blocked"}
			}
			return nil
		},
		Data: func(_ string, to []string, _ []byte) error {
			if slices.Contains(to, "late@dest.test") {
				return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no such user after all"}
			}
			return nil
		}})
	startDeliverer(t, delivery.Config{Store: st, Transport: relayTo(t, sink.Addr()), Retry: fastRetry})
	id := enqueue(t, st, 1, "gone@dest.test", "blocked@dest.test", "ok@dest.test")
	late := enqueue(t, st, 2, "late@dest.test")
	waitStatus(t, st, id, queue.StatusPartial)
	waitStatus(t, st, late, queue.StatusFailed)
	ctx := context.Background()
	s, err := st.LookupSuppression(ctx, "gone@dest.test", "app.test")
	if err != nil || s.Cause != queue.CauseBounced || s.MessageID != id || !strings.Contains(s.Reason, "no such user") {
		t.Errorf("gone@dest.test: %+v, %v", s, err)
	}
	for _, a := range []string{"blocked@dest.test", "ok@dest.test", "late@dest.test"} {
		if _, err := st.LookupSuppression(ctx, a, "app.test"); !errors.Is(err, queue.ErrNotFound) {
			t.Errorf("%s suppressed: %v", a, err)
		}
	}
}
