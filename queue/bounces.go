package queue

import (
	"fmt"
	"strings"
	"time"
)

// hardBounce is the one rule that decides whether a permanent failure
// means the address itself is bad, so that it is suppressed: a 5xx reply
// (or a 5.x.x status with no reply code, as a DSN may give) whose enhanced
// status, when there is one, is about the address — 5.1.x (no such
// mailbox, no such domain, null MX), 5.2.0 and 5.2.1 (mailbox disabled),
// or 5.0.0. Failures about the sender, the message or the path — 5.7.x
// (policy: a blocklisted sending IP, a message taken for spam), 5.2.2
// (mailbox full), 5.2.3 and 5.3.x (too large, system), 5.4.x (routing),
// 5.5.x (protocol), 5.6.x (content) — say nothing about the address and
// suppress nothing; neither does a temporary failure that ran out of time.
// Postfix's and the mailbox providers' bounce classes draw the same line.
func hardBounce(code int, enhanced string) bool {
	if enhanced == "" {
		return code >= 500 && code < 600
	}
	if code != 0 && (code < 500 || code >= 600) {
		return false
	}
	class, rest, ok := strings.Cut(enhanced, ".")
	if !ok || class != "5" {
		return false
	}
	subject, detail, _ := strings.Cut(rest, ".")
	switch subject {
	case "0", "1":
		return true
	case "2":
		return detail == "0" || detail == "1"
	}
	return false
}

// describeReply writes a reply as one line: "550 5.1.1 no such user".
func describeReply(code int, enhanced, text string) string {
	var parts []string
	if code != 0 {
		parts = append(parts, fmt.Sprint(code))
	}
	if enhanced != "" && !strings.HasPrefix(text, enhanced) {
		parts = append(parts, enhanced)
	}
	if text != "" {
		parts = append(parts, text)
	}
	return clean(strings.Join(parts, " "))
}

// bounceSuppression is the suppression a hard bounce of address in
// message id causes: for every sender, since the address is gone for all.
func bounceSuppression(id, address string, code int, enhanced, text string, at time.Time) Suppression {
	return Suppression{Address: normalAddress(address), Cause: CauseBounced, MessageID: id,
		Reason: describeReply(code, enhanced, text), CreatedAt: at}
}

// complaintSuppression is the suppression a complaint about message id
// from address causes: for the sender's domain only, since the complaint
// was about that sender's mail.
func complaintSuppression(id, address, from, text string, at time.Time) Suppression {
	reason := "the recipient reported the message as spam"
	if text != "" {
		reason += ": " + clean(text)
	}
	return Suppression{Address: normalAddress(address), Scope: senderDomain(from), Cause: CauseComplained,
		MessageID: id, Reason: reason, CreatedAt: at}
}

// uniqueSuppressions keeps the last entry of each address and scope, so
// that one statement never updates a row twice (PostgreSQL refuses an
// upsert that does).
func uniqueSuppressions(rows []Suppression) []Suppression {
	if len(rows) < 2 {
		return rows
	}
	last := make(map[[2]string]int, len(rows))
	for i, s := range rows {
		last[[2]string{s.Address, s.Scope}] = i
	}
	out := rows[:0:0]
	for i, s := range rows {
		if last[[2]string{s.Address, s.Scope}] == i {
			out = append(out, s)
		}
	}
	return out
}
