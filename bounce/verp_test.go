package bounce

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/outbox-mail/outbox/internal/smtpsink"
	"github.com/outbox-mail/outbox/smtp"
)

var (
	secret1 = bytes.Repeat([]byte("k"), 32)
	secret2 = bytes.Repeat([]byte("n"), 32)
)

func newVERP(t testing.TB, secrets ...[]byte) *VERP {
	t.Helper()
	if len(secrets) == 0 {
		secrets = [][]byte{secret1}
	}
	v, err := NewVERP("Bounces.Example.COM", secrets...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

var verpForm = regexp.MustCompile(`^bounces\+[a-z2-7]{48,52}@bounces\.example\.com$`)

func TestVERPRoundTrip(t *testing.T) {
	v := newVERP(t)
	for _, rcpt := range []int{0, 1, 127, 128, 16383, 16384, maxRcpt - 1} {
		id := uuid.Must(uuid.NewV7()).String()
		rp, err := v.ReturnPath(id, rcpt)
		if err != nil {
			t.Fatal(err)
		}
		local, _, _ := strings.Cut(rp, "@")
		if !verpForm.MatchString(rp) || len(local) > 64 {
			t.Errorf("return path %q (local part %d octets)", rp, len(local))
		}
		for _, form := range []string{rp, strings.ToUpper(rp), strings.ToLower(rp) + "."} {
			gotID, gotRcpt, err := v.Parse(form)
			if err != nil || gotID != id || gotRcpt != rcpt {
				t.Errorf("Parse(%q) = %s, %d, %v; want %s, %d", form, gotID, gotRcpt, err, id, rcpt)
			}
		}
	}
}

// Any change to a token, another secret, another domain or another form
// is refused with the error that says which.
func TestVERPRefusals(t *testing.T) {
	v := newVERP(t)
	id := uuid.Must(uuid.NewV7()).String()
	rp, _ := v.ReturnPath(id, 3)
	local, domain, _ := strings.Cut(rp, "@")
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	for i := len(verpPrefix); i < len(local); i++ {
		c := alphabet[(strings.IndexByte(alphabet, local[i])+1)%32]
		bad := local[:i] + string(c) + local[i+1:] + "@" + domain
		if _, _, err := v.Parse(bad); !errors.Is(err, ErrBadToken) {
			t.Errorf("token changed at %d: %v", i, err)
		}
	}
	other := newVERP(t, secret2)
	for name, tc := range map[string]struct {
		v    *VERP
		addr string
		want error
	}{
		"other secret":  {other, rp, ErrBadToken},
		"cut short":     {v, local[:len(local)-1] + "@" + domain, ErrBadToken},
		"cut more":      {v, local[:30] + "@" + domain, ErrBadToken},
		"longer":        {v, local + "a@" + domain, ErrBadToken},
		"not base32":    {v, "bounces+!!!!@" + domain, ErrBadToken},
		"empty token":   {v, "bounces+@" + domain, ErrBadToken},
		"other domain":  {v, local + "@example.com", ErrNotVERP},
		"subdomain":     {v, local + "@x." + domain, ErrNotVERP},
		"no prefix":     {v, "postmaster@" + domain, ErrNotVERP},
		"other prefix":  {v, strings.Replace(local, "bounces+", "bounces-", 1) + "@" + domain, ErrNotVERP},
		"no domain":     {v, local, ErrNotVERP},
		"bad IDN":       {v, local + "@xn--a.com", ErrNotVERP},
		"empty":         {v, "", ErrNotVERP},
		"just a prefix": {v, "bounces@" + domain, ErrNotVERP},
	} {
		if _, _, err := tc.v.Parse(tc.addr); !errors.Is(err, tc.want) {
			t.Errorf("%s: Parse(%q) = %v, want %v", name, tc.addr, err, tc.want)
		}
	}
	// After a rotation the old secret's tokens still parse.
	rotated := newVERP(t, secret2, secret1)
	if got, _, err := rotated.Parse(rp); err != nil || got != id {
		t.Errorf("rotated: %v", err)
	}
	for _, bad := range []struct {
		id   string
		rcpt int
	}{{"not-a-uuid", 0}, {id, -1}, {id, maxRcpt}} {
		if _, err := v.ReturnPath(bad.id, bad.rcpt); err == nil {
			t.Errorf("ReturnPath(%q, %d) accepted", bad.id, bad.rcpt)
		}
	}
	for _, d := range []string{"", "localhost", "exa mple.com"} {
		if _, err := NewVERP(d, secret1); err == nil {
			t.Errorf("NewVERP(%q) accepted", d)
		}
	}
	if _, err := NewVERP("example.com", []byte("short")); err == nil {
		t.Error("a short secret accepted")
	}
}

// A return path is a valid reverse path for a real SMTP exchange: the
// smtp client sends it and a go-smtp server records it unchanged.
func TestVERPOverSMTP(t *testing.T) {
	v := newVERP(t)
	rp, _ := v.ReturnPath(uuid.Must(uuid.NewV7()).String(), 0)
	sink, err := smtpsink.Start(smtpsink.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := smtp.Dial(ctx, sink.Addr(), &smtp.Options{StartTLS: smtp.TLSOff})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.SendAndQuit(ctx, &smtp.Envelope{From: rp, Recipients: []string{"bob@example.net"}},
		strings.NewReader("From: a@example.com\r\n\r\nhi\r\n")); err != nil {
		t.Fatal(err)
	}
	if sink.WaitFor(1, 10*time.Second) != 1 || sink.Received()[0].From != rp {
		t.Fatalf("the server received %+v, want MAIL FROM %s", sink.Received(), rp)
	}
}

// FuzzVERPParse feeds arbitrary addresses to Parse: no panic, and what it
// accepts is exactly a return path it makes.
func FuzzVERPParse(f *testing.F) {
	v := newVERP(f)
	rp, _ := v.ReturnPath("0190a3b2-7c4d-7def-8123-456789abcdef", 5)
	for _, s := range []string{rp, strings.ToUpper(rp), "bounces+@bounces.example.com", "x@y", "", "bounces+aaaa@bounces.example.com"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		id, rcpt, err := v.Parse(addr)
		if err != nil {
			if !errors.Is(err, ErrNotVERP) && !errors.Is(err, ErrBadToken) {
				t.Fatalf("Parse(%q): %v", addr, err)
			}
			return
		}
		again, err := v.ReturnPath(id, rcpt)
		if err != nil || !strings.EqualFold(strings.TrimSuffix(addr, "."), again) {
			t.Fatalf("Parse(%q) accepted %s/%d, whose return path is %q (%v)", addr, id, rcpt, again, err)
		}
	})
}

// The unsubscribe address of a recipient carries its return path's
// token, fits RFC 5321's 64-octet local part, and parses back; a return
// path is not an unsubscribe address, nor the reverse.
func TestUnsubscribeAddress(t *testing.T) {
	v, err := NewVERP("bounces.example.com", []byte("0123456789abcdef0123"))
	if err != nil {
		t.Fatal(err)
	}
	const id = "0190a3b2-7c4d-7def-8123-456789abcdef"
	a, err := v.UnsubscribeAddress(id, maxRcpt-1)
	if err != nil {
		t.Fatal(err)
	}
	local, domain, _ := strings.Cut(a, "@")
	if !strings.HasPrefix(local, "unsubscribe+") || len(local) > 64 || domain != "bounces.example.com" {
		t.Fatalf("UnsubscribeAddress = %q (local part %d octets)", a, len(local))
	}
	gotID, rcpt, err := v.ParseUnsubscribe(strings.ToUpper(a))
	if err != nil || gotID != id || rcpt != maxRcpt-1 {
		t.Errorf("ParseUnsubscribe(%q) = %s %d %v", a, gotID, rcpt, err)
	}
	rp, _ := v.ReturnPath(id, 3)
	if _, _, err := v.ParseUnsubscribe(rp); !errors.Is(err, ErrNotVERP) {
		t.Errorf("ParseUnsubscribe(return path) = %v, want ErrNotVERP", err)
	}
	if _, _, err := v.Parse(a); !errors.Is(err, ErrNotVERP) {
		t.Errorf("Parse(unsubscribe address) = %v, want ErrNotVERP", err)
	}
	forged := strings.Replace(a, "+a", "+b", 1)
	if forged == a {
		forged = strings.Replace(a, "+", "+a", 1)
	}
	if _, _, err := v.ParseUnsubscribe(forged); !errors.Is(err, ErrBadToken) {
		t.Errorf("ParseUnsubscribe(forged %q) = %v, want ErrBadToken", forged, err)
	}
}
