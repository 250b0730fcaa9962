package delivery

import (
	"fmt"
	"time"

	"github.com/outbox-mail/outbox/queue"
)

// classify turns one attempt's outcome into the result the store records:
// 2xx delivers a recipient, 5xx fails it, and a 4xx or no reply at all
// (connection lost, timeout) defers it. Deferred recipients of a message
// past its lifetime fail instead. retryNow schedules deferred recipients
// at once, for attempts cut short by shutdown.
func classify(c *queue.Claimed, out Outcome, policy RetryPolicy, now time.Time, retryNow bool) queue.Result {
	replies := make(map[string]Reply, len(out.Recipients))
	for _, r := range out.Recipients {
		replies[r.Address] = r.Reply
	}
	res := queue.Result{MessageID: c.ID, Recipients: make([]queue.RecipientResult, 0, len(c.Recipients))}
	expired := !c.ExpiresAt.IsZero() && !now.Before(c.ExpiresAt)
	anyDeferred := false
	for _, rcpt := range c.Recipients {
		reply, ok := replies[rcpt.Address]
		if !ok {
			reply = Reply{Text: noReplyText(out.Err)}
		}
		rr := queue.RecipientResult{Address: rcpt.Address, Code: reply.Code,
			EnhancedCode: reply.EnhancedCode, Text: reply.Text, Refused: reply.Refused}
		switch {
		case reply.Code >= 200 && reply.Code < 300:
			rr.Status = queue.RecipientDelivered
		case reply.Code >= 500 && reply.Code < 600 && !reply.Soft:
			rr.Status = queue.RecipientFailed
		case expired:
			rr.Status = queue.RecipientFailed
			rr.Text = fmt.Sprintf("gave up after %d attempts (lifetime reached); last: %s", c.Attempts, describe(reply))
		default:
			rr.Status = queue.RecipientDeferred
			anyDeferred = true
		}
		res.Recipients = append(res.Recipients, rr)
	}
	if anyDeferred {
		switch {
		case retryNow:
			res.NextAttemptAt = now
		default:
			res.NextAttemptAt = now.Add(policy.Delay(c.Attempts))
			if out.RetryAfter.After(res.NextAttemptAt) {
				// A destination backed off: no sooner than it allows.
				res.NextAttemptAt = out.RetryAfter
			}
			if !c.ExpiresAt.IsZero() && res.NextAttemptAt.After(c.ExpiresAt) {
				// One last attempt at the deadline rather than none.
				res.NextAttemptAt = c.ExpiresAt
			}
		}
	}
	return res
}

func noReplyText(err error) string {
	if err == nil {
		return "no reply from server"
	}
	return err.Error()
}

func describe(r Reply) string {
	if r.Code == 0 {
		return r.Text
	}
	if r.EnhancedCode != "" {
		return fmt.Sprintf("%d %s %s", r.Code, r.EnhancedCode, r.Text)
	}
	return fmt.Sprintf("%d %s", r.Code, r.Text)
}
