package delivery

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/outbox-mail/outbox/queue"
)

func claimed(attempts int, expires time.Time, rcpts ...string) *queue.Claimed {
	c := &queue.Claimed{Message: queue.Message{ID: "m1", Attempts: attempts, ExpiresAt: expires}}
	for _, r := range rcpts {
		c.Recipients = append(c.Recipients, queue.Recipient{Address: r, Status: queue.RecipientPending})
	}
	return c
}

func TestClassifyPerRecipient(t *testing.T) {
	now := time.Now()
	c := claimed(1, now.Add(time.Hour), "ok@x.test", "gone@x.test", "busy@x.test", "silent@x.test")
	out := Outcome{
		Recipients: []RecipientReply{
			{"ok@x.test", Reply{Code: 250, EnhancedCode: "2.0.0", Text: "OK"}},
			{"gone@x.test", Reply{Code: 550, EnhancedCode: "5.1.1", Text: "no such user"}},
			{"busy@x.test", Reply{Code: 451, EnhancedCode: "4.3.0", Text: "try later"}},
		},
		Err: errors.New("connection reset"),
	}
	policy := RetryPolicy{Initial: time.Minute, Max: time.Hour, Jitter: -1}
	res := classify(c, out, policy, now, false)
	want := map[string]queue.RecipientStatus{
		"ok@x.test": queue.RecipientDelivered, "gone@x.test": queue.RecipientFailed,
		"busy@x.test": queue.RecipientDeferred, "silent@x.test": queue.RecipientDeferred,
	}
	for _, r := range res.Recipients {
		if r.Status != want[r.Address] {
			t.Errorf("%s: status %s, want %s", r.Address, r.Status, want[r.Address])
		}
	}
	if got := res.Recipients[3].Text; got != "connection reset" {
		t.Errorf("silent recipient text %q, want the connection error", got)
	}
	if res.Recipients[1].Code != 550 || res.Recipients[1].EnhancedCode != "5.1.1" {
		t.Errorf("failed recipient keeps its reply: %+v", res.Recipients[1])
	}
	if !res.NextAttemptAt.Equal(now.Add(time.Minute)) {
		t.Errorf("next attempt %v, want now+1m", res.NextAttemptAt.Sub(now))
	}
}

func TestClassifyExpiredFailsDeferred(t *testing.T) {
	now := time.Now()
	c := claimed(7, now.Add(-time.Second), "busy@x.test", "ok@x.test")
	out := Outcome{Recipients: []RecipientReply{
		{"busy@x.test", Reply{Code: 451, EnhancedCode: "4.3.0", Text: "try later"}},
		{"ok@x.test", Reply{Code: 250, EnhancedCode: "", Text: "OK"}},
	}}
	res := classify(c, out, DefaultRetryPolicy, now, false)
	if res.Recipients[0].Status != queue.RecipientFailed || !strings.Contains(res.Recipients[0].Text, "451 4.3.0 try later") {
		t.Errorf("expired deferral: %+v", res.Recipients[0])
	}
	if res.Recipients[1].Status != queue.RecipientDelivered {
		t.Errorf("delivered recipient: %+v", res.Recipients[1])
	}
	if !res.NextAttemptAt.IsZero() {
		t.Errorf("a final result has no next attempt, got %v", res.NextAttemptAt)
	}
}

func TestClassifyLastAttemptAtDeadline(t *testing.T) {
	now := time.Now()
	deadline := now.Add(30 * time.Second)
	c := claimed(3, deadline, "busy@x.test")
	out := Outcome{Recipients: []RecipientReply{{"busy@x.test", Reply{Code: 421, EnhancedCode: "", Text: "closing"}}}}
	res := classify(c, out, RetryPolicy{Initial: time.Hour, Max: time.Hour, Jitter: -1}, now, false)
	if !res.NextAttemptAt.Equal(deadline) {
		t.Errorf("next attempt %v, want the deadline %v", res.NextAttemptAt, deadline)
	}
}

func TestClassifyShutdownRetriesNow(t *testing.T) {
	now := time.Now()
	c := claimed(1, now.Add(time.Hour), "a@x.test")
	res := classify(c, Outcome{Err: errors.New("context canceled")}, DefaultRetryPolicy, now, true)
	if res.Recipients[0].Status != queue.RecipientDeferred || !res.NextAttemptAt.Equal(now) {
		t.Errorf("aborted attempt: %+v next %v", res.Recipients[0], res.NextAttemptAt)
	}
}

func TestRetryDelayDoublesAndCaps(t *testing.T) {
	p := RetryPolicy{Initial: 5 * time.Minute, Max: 67 * time.Minute, Jitter: -1}
	want := []time.Duration{5, 10, 20, 40, 67, 67}
	for i, w := range want {
		if got := p.Delay(i + 1); got != w*time.Minute {
			t.Errorf("Delay(%d) = %v, want %v", i+1, got, w*time.Minute)
		}
	}
}

func TestRetryDelayJitterStaysInBounds(t *testing.T) {
	p := RetryPolicy{Initial: time.Second, Max: time.Minute, Jitter: 0.1}
	seen := map[time.Duration]bool{}
	for range 200 {
		d := p.Delay(1)
		if d < 900*time.Millisecond || d > 1100*time.Millisecond {
			t.Fatalf("Delay(1) = %v, outside ±10%% of 1s", d)
		}
		seen[d] = true
	}
	if len(seen) < 10 {
		t.Errorf("jitter produced only %d distinct delays", len(seen))
	}
}

func TestClassifySessionRejectionDefers(t *testing.T) {
	now := time.Now()
	c := claimed(1, now.Add(time.Hour), "a@x.test")
	out := Outcome{Recipients: []RecipientReply{{"a@x.test",
		Reply{Code: 535, EnhancedCode: "5.7.8", Text: "bad credentials", Soft: true}}}}
	res := classify(c, out, DefaultRetryPolicy, now, false)
	if r := res.Recipients[0]; r.Status != queue.RecipientDeferred || r.Code != 535 {
		t.Fatalf("a relay's AUTH rejection must defer and keep its reply, got %+v", r)
	}
}

func TestSessionStage(t *testing.T) {
	for cmd, want := range map[string]bool{
		"greeting": true, "EHLO": true, "STARTTLS": true, "AUTH PLAIN": true, "AUTH": true,
		"MAIL FROM:<a@x.test>": false, "RCPT TO:<b@x.test>": false, "DATA": false, "BDAT": false,
	} {
		if got := sessionStage(cmd); got != want {
			t.Errorf("sessionStage(%q) = %v, want %v", cmd, got, want)
		}
	}
}
