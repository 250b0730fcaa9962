package queue

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzValidate: whatever a producer hands in, validation answers without
// panicking, and a refusal is ErrInvalid; what it accepts has no line end
// where an SMTP command would carry it, and storable text everywhere.
func FuzzValidate(f *testing.F) {
	f.Add("a@x.test", "b@x.test", "subject", "key", "FULL", "env", "FAILURE,DELAY", "date")
	f.Add("a@x\r\n.test", "", "\x00", "\xff", "ALL", "x\ny", "ALWAYS", "message id")
	f.Fuzz(func(t *testing.T, from, rcpt, subject, key, ret, envid, notify, repair string) {
		m := NewMessage{From: from, Recipients: []string{rcpt}, Subject: subject, IdempotencyKey: key,
			Body: strings.NewReader("x"), Flags: Flags{DSN: DSN{Return: DSNReturn(ret), EnvID: envid}},
			RecipientDSN: []RecipientDSN{{Notify: strings.Split(notify, ",")}}, Repairs: []string{repair}}
		err := validate(&m, time.Now())
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("validate refused with %v, not ErrInvalid", err)
			}
			return
		}
		for _, v := range []string{from, rcpt, key, envid} {
			if strings.ContainsAny(v, "\r\n\x00") {
				t.Fatalf("accepted %q with a line end or NUL", v)
			}
		}
		if checkText("Subject", subject, false) != nil {
			t.Fatalf("accepted a subject no column stores: %q", subject)
		}
	})
}

// FuzzCursor: a cursor from a URL decodes or is refused, never panics, and
// a cursor the queue made decodes to what it encoded.
func FuzzCursor(f *testing.F) {
	f.Add("MDFhMjM0MzYtNmFkMC03NDkx")
	f.Add("!!")
	f.Fuzz(func(t *testing.T, c string) {
		if v, ok := decodeCursor(c); ok {
			if back, ok := decodeCursor(encodeCursor(v)); !ok || back != v {
				t.Fatalf("cursor %q decoded to %q, re-encoded to %q", c, v, back)
			}
		}
	})
}

// TestSummarize: bounced and suppressed recipients count as failed.
func TestSummarize(t *testing.T) {
	P, D, Def, F, B, S := RecipientPending, RecipientDelivered, RecipientDeferred, RecipientFailed, RecipientBounced, RecipientSuppressed
	for _, tc := range []struct {
		rs   []RecipientStatus
		want Status
	}{
		{[]RecipientStatus{P, P}, StatusQueued},
		{[]RecipientStatus{P, S}, StatusQueued},
		{[]RecipientStatus{P, D}, StatusDeferred},
		{[]RecipientStatus{Def, S}, StatusDeferred},
		{[]RecipientStatus{D, D}, StatusDelivered},
		{[]RecipientStatus{D, B}, StatusPartial},
		{[]RecipientStatus{D, S}, StatusPartial},
		{[]RecipientStatus{S, S}, StatusFailed},
		{[]RecipientStatus{B}, StatusFailed},
		{[]RecipientStatus{F, B, S}, StatusFailed},
	} {
		if got := Summarize(tc.rs); got != tc.want {
			t.Errorf("Summarize(%v) = %s, want %s", tc.rs, got, tc.want)
		}
	}
}
