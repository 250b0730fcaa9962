package bounce

import (
	"bytes"
	"regexp"
	"strings"
)

// Plain-text bounces are recognised only when the message says it is one
// (a mailer daemon's From, or a bounce's Subject) and the text holds an
// SMTP status; anything else is ErrNotReport. (Auto-Submitted tells
// nothing: MTAs mark their bounces auto-replied, like vacation replies.) This covers qmail's
// "failure notice", Exim's and old Sendmail's plain bounces, and MTAs
// that drop the DSN structure when they forward.
var (
	daemonFrom    = regexp.MustCompile(`(?i)mailer-daemon|postmaster|mail delivery (subsystem|system)`)
	bounceSubject = regexp.MustCompile(`(?i)undeliver|undelivered|delivery (status notification|failure|failed|has failed|problem)|returned mail|failure notice|mail delivery failed|delivery notification|could not be delivered|non[- ]?delivery`)
	replyCode     = regexp.MustCompile(`(?:^|[^0-9.])([45][0-9][0-9])(?:[ -]|$)`)
	angleAddr     = regexp.MustCompile(`<([^<>\s@]+@[^<>\s@]+)>`)
)

// plain reads a message that is not a multipart/report as a plain bounce.
func (p *parser) plain() (*Report, error) {
	if !daemonFrom.MatchString(p.top.get("from")) && !bounceSubject.MatchString(p.top.get("subject")) {
		return nil, notReport("neither a DSN nor an ARF report, and neither its From nor its Subject is a bounce's")
	}
	rcpt, ok := scanText(p.text)
	if !ok {
		return nil, notReport("a bounce-like message with no SMTP status in its text")
	}
	if rcpt.FinalRecipient == "" {
		rcpt.FinalRecipient = strings.TrimSpace(strings.Split(p.top.get("x-failed-recipients"), ",")[0])
	}
	p.rep.Kind = KindNonStandard
	p.rep.Recipients = []Recipient{rcpt}
	return &p.rep, nil
}

// scanText finds the first line of text with a 4xx/5xx reply or status
// code and makes a Recipient of it: the status (the enhanced code, or the
// reply's class with .0.0), the line as diagnostic, and the last <address>
// seen up to there.
func scanText(text []byte) (Recipient, bool) {
	var addr string
	for _, line := range bytes.Split(text, []byte("\n")) {
		l := strings.TrimSpace(string(line))
		if m := angleAddr.FindAllStringSubmatch(l, -1); m != nil {
			addr = m[len(m)-1][1]
		}
		status := statusCode(l)
		if status != "" && status[0] == '2' {
			status = ""
		}
		reply := replyCode.FindStringSubmatch(l)
		if status == "" && reply == nil {
			continue
		}
		if status == "" {
			status = reply[1][:1] + ".0.0"
		}
		r := Recipient{FinalRecipient: addr, Status: status, DiagnosticCode: truncate(l, 500), Action: ActionFailed}
		if status[0] == '4' {
			r.Action = ActionDelayed
		}
		return r, true
	}
	return Recipient{}, false
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}
