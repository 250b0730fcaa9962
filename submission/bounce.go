package submission

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/emersion/go-smtp"

	"github.com/outbox-mail/outbox/bounce"
)

// Inbound takes the mail that comes back to the bounce domain: delivery
// status notifications and complaints sent to VERP return paths, and
// mail to unsubscribe addresses. Anyone may send it, without
// authentication; *feedback.Handler is one.
type Inbound interface {
	// Domain is the bounce domain; mail for any address in it goes to
	// Receive, never to the queue.
	Domain() string
	// MaxSize bounds one such message, in bytes.
	MaxSize() int64
	// CheckRecipient says whether addr, an address of the domain, takes
	// mail: nil, or an error wrapping bounce.ErrNotVERP (no such address)
	// or bounce.ErrBadToken (a forged or altered token).
	CheckRecipient(addr string) error
	// Receive reads one message for rcpts and applies it before it
	// returns. Its errors wrap bounce.ErrTooLarge or bounce.ErrMalformed
	// (nothing was recorded) or are the store's.
	Receive(ctx context.Context, rcpts []string, body io.Reader) error
}

var (
	errRelayDenied = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0},
		Message: "Authentication required: without it only mail for the bounce domain is accepted"}
	errOwnTransaction = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 5, 3},
		Message: "Mail for the bounce domain takes a transaction of its own; send this recipient in another"}
)

// mayReport lets a session without authentication start a transaction
// when there is a bounce domain to send to, and refuses one whose
// declared SIZE is over the reports' limit at once.
func (s *session) mayReport(opts *smtp.MailOptions) error {
	ib := s.srv.cfg.Inbound
	if ib == nil {
		s.log.Debug("submission: MAIL refused without authentication")
		return errAuthRequired
	}
	if opts != nil && opts.Size > ib.MaxSize() {
		return tooLargeReport(ib.MaxSize())
	}
	return nil
}

func tooLargeReport(limit int64) error {
	return &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4},
		Message: fmt.Sprintf("Message too large: mail for the bounce domain may be at most %d bytes", limit)}
}

// routeRcpt decides where recipient to goes: an address of the bounce
// domain to Inbound, after its token is checked; any other address to
// the queue, which needs an authorised session. The two never share a
// transaction.
func (s *session) routeRcpt(to string) error {
	ib := s.srv.cfg.Inbound
	ours := ib != nil && inDomain(to, ib.Domain())
	switch {
	case !ours && !s.authorized():
		s.log.Info("submission: RCPT refused without authentication (not the bounce domain)", "to", logSafe(to, 254))
		s.srv.rejected(RejectAuthRequired)
		return errRelayDenied
	case ours != s.tx.feedback && len(s.tx.rcpts) > 0:
		return errOwnTransaction
	case !ours:
		return nil
	}
	if err := ib.CheckRecipient(to); err != nil {
		s.log.Info("submission: RCPT for the bounce domain refused", "to", logSafe(to, 254), "err", err)
		s.srv.rejected(RejectBadRecipient)
		if errors.Is(err, bounce.ErrBadToken) {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1},
				Message: "Bounce address token does not verify: this address was not made here"}
		}
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1},
			Message: "No such address in the bounce domain"}
	}
	s.tx.feedback = true
	return nil
}

// inDomain reports whether addr's domain is domain, whatever the case.
func inDomain(addr, domain string) bool {
	at := strings.LastIndexByte(addr, '@')
	return at >= 0 && domain != "" && strings.EqualFold(strings.TrimSuffix(addr[at+1:], "."), domain)
}

// reportData hands the message of a bounce-domain transaction to
// Inbound and words its verdict: 250 once it is recorded (or, for mail
// that is no report, dropped), 552 over the limit, 550 5.6.0 for a
// report that cannot be read, 451 for a store that could not record it.
func (s *session) reportData(r io.Reader) error {
	src := &readErr{r: r}
	var in io.Reader = src
	if _, bdat := r.(*io.PipeReader); !bdat {
		in = unstuffLines(src)
	}
	ib := s.srv.cfg.Inbound
	err := ib.Receive(s.srv.ctx, s.tx.rcpts, in)
	switch {
	case src.err == smtp.ErrDataTooLarge || errors.Is(err, bounce.ErrTooLarge):
		s.log.Warn("submission: report too large", "limit", ib.MaxSize())
		return tooLargeReport(ib.MaxSize())
	case src.err != nil && src.err != io.EOF:
		s.log.Warn("submission: report transfer failed", "err", src.err)
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "Message transfer interrupted"}
	case errors.Is(err, bounce.ErrMalformed):
		s.log.Warn("submission: malformed report refused", "err", err)
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 6, 0},
			Message: "Malformed report: " + logSafe(strings.TrimPrefix(err.Error(), "bounce: "), 200)}
	case errors.Is(err, bounce.ErrNotVERP) || errors.Is(err, bounce.ErrBadToken):
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1},
			Message: "No such address: " + logSafe(strings.TrimPrefix(err.Error(), "feedback: "), 200)}
	case err != nil:
		s.log.Error("submission: recording a report failed", "err", err)
		return errStore
	}
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "OK: report received"}
}
