// Package feedback applies what comes back after mail was sent: bounce
// reports (RFC 3464 DSNs and plain mailer-daemon bounces) and complaints
// (ARF, RFC 5965) that arrive at the per-recipient VERP return paths of
// the bounce domain, mail to the unsubscribe addresses of the same
// domain, and the one-click unsubscribe tokens of RFC 8058 links.
//
// Each becomes what the store records for it — recipient history, the
// suppression its rules derive (a hard bounce, a complaint), or the
// unsubscribe's suppression — together with its webhook events, in one
// transaction, before the sender of the report hears "accepted". Nothing
// is recorded for a report that cannot be read whole.
package feedback

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/outbox-mail/outbox/bounce"
	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/unsubscribe"
	"github.com/outbox-mail/outbox/webhook"
)

// Store is what feedback needs of the queue store; every queue.Store
// has it.
type Store interface {
	Get(ctx context.Context, id string) (*queue.Message, error)
	AddRecipientEvents(ctx context.Context, events []queue.RecipientEvent, hooks ...queue.NewEvent) error
	Suppress(ctx context.Context, entries []queue.Suppression, events ...queue.NewEvent) error
	LookupSuppression(ctx context.Context, address, senderDomain string) (*queue.Suppression, error)
}

// Config configures a Handler. Store is required, and VERP or Tokens.
type Config struct {
	Store Store
	// VERP checks the return paths and unsubscribe addresses of the
	// bounce domain; nil when there is none.
	VERP *bounce.VERP
	// Tokens checks one-click unsubscribe tokens; nil when links are off.
	Tokens *unsubscribe.Tokens
	// Webhooks makes the bounced, complained and unsubscribed events; nil
	// for none.
	Webhooks *webhook.Dispatcher
	// MaxSize bounds an incoming report (default bounce.DefaultMaxSize).
	MaxSize int64
	// Logger receives one line per report, dropped message and
	// unsubscribe (default slog.Default()).
	Logger *slog.Logger
}

// Handler applies feedback to the store. It is safe for concurrent use.
type Handler struct {
	cfg Config
	log *slog.Logger
}

// ErrGone: the token verifies, but the message it names is no longer in
// the store (purged after the retention), so it names no address. It
// wraps bounce.ErrNotVERP: the address is as good as unknown.
var ErrGone = fmt.Errorf("feedback: the message is no longer kept (%w)", bounce.ErrNotVERP)

// New checks cfg and returns a Handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Store == nil {
		return nil, errors.New("feedback: Config.Store is required")
	}
	if cfg.VERP == nil && cfg.Tokens == nil {
		return nil, errors.New("feedback: Config.VERP or Config.Tokens is required")
	}
	if cfg.MaxSize <= 0 {
		cfg.MaxSize = bounce.DefaultMaxSize
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Handler{cfg: cfg, log: cfg.Logger.With("component", "feedback")}, nil
}

// Domain is the bounce domain, "" without one.
func (h *Handler) Domain() string {
	if h.cfg.VERP == nil {
		return ""
	}
	return h.cfg.VERP.Domain()
}

// MaxSize is the largest report accepted, in bytes.
func (h *Handler) MaxSize() int64 { return h.cfg.MaxSize }

// target is one verified address of the bounce domain: the message and
// recipient it names, and whether it is an unsubscribe address.
type target struct {
	id          string
	idx         int
	unsubscribe bool
}

// parse checks addr, an address of the bounce domain.
func (h *Handler) parse(addr string) (target, error) {
	if h.cfg.VERP == nil {
		return target{}, fmt.Errorf("%w: there is no bounce domain", bounce.ErrNotVERP)
	}
	id, idx, err := h.cfg.VERP.Parse(addr)
	if errors.Is(err, bounce.ErrNotVERP) {
		if uid, uidx, uerr := h.cfg.VERP.ParseUnsubscribe(addr); !errors.Is(uerr, bounce.ErrNotVERP) {
			return target{id: uid, idx: uidx, unsubscribe: true}, uerr
		}
	}
	return target{id: id, idx: idx}, err
}

// CheckRecipient says whether mail to addr, an address of the bounce
// domain, is taken: nil for a return path or an unsubscribe address
// whose token verifies; an error wrapping bounce.ErrBadToken for a forged
// one, bounce.ErrNotVERP for any other address.
func (h *Handler) CheckRecipient(addr string) error {
	_, err := h.parse(addr)
	return err
}

// Receive reads one message sent to rcpts, addresses CheckRecipient
// took, and applies it: a report to a return path is recorded against
// the recipient it names; mail to an unsubscribe address unsubscribes
// its recipient, whatever it says. A message that is no report (an
// automatic reply, spam) is read, logged and dropped: nil. Errors wrap
// bounce.ErrTooLarge or bounce.ErrMalformed, and then nothing was
// recorded; any other error is the store's.
func (h *Handler) Receive(ctx context.Context, rcpts []string, body io.Reader) error {
	var reports, unsubs []target
	for _, a := range rcpts {
		t, err := h.parse(a)
		if err != nil {
			return err
		}
		if t.unsubscribe {
			unsubs = append(unsubs, t)
		} else {
			reports = append(reports, t)
		}
	}
	var rep *bounce.Report
	if len(reports) > 0 {
		var err error
		rep, err = bounce.Parse(body, h.cfg.MaxSize)
		if errors.Is(err, bounce.ErrNotReport) {
			h.log.Info("feedback: mail to a return path that is no report; dropped", "message", reports[0].id, "err", err)
			rep = nil
		} else if err != nil {
			return err
		}
	} else if n, err := io.Copy(io.Discard, io.LimitReader(body, h.cfg.MaxSize+1)); err != nil {
		return err
	} else if n > h.cfg.MaxSize {
		return fmt.Errorf("%w: more than %d bytes", bounce.ErrTooLarge, h.cfg.MaxSize)
	}
	for _, t := range unsubs {
		if err := h.unsubscribeRecipient(ctx, t); err != nil {
			return err
		}
	}
	if rep == nil {
		return nil
	}
	for _, t := range reports {
		if err := h.record(ctx, t, rep); err != nil {
			return err
		}
	}
	return nil
}

// message reads the message t names; ErrGone when it was purged.
func (h *Handler) message(ctx context.Context, t target) (*queue.Message, string, error) {
	m, err := h.cfg.Store.Get(ctx, t.id)
	if errors.Is(err, queue.ErrNotFound) {
		return nil, "", fmt.Errorf("%w: message %s", ErrGone, t.id)
	}
	if err != nil {
		return nil, "", err
	}
	if t.idx >= len(m.Recipients) {
		return nil, "", fmt.Errorf("%w: message %s has no recipient #%d", bounce.ErrBadToken, t.id, t.idx)
	}
	return m, m.Recipients[t.idx].Address, nil
}

// record applies a report to the recipient t names: a failure is a
// bounce, a delay a delay, a feedback report a complaint. A report of a
// message no longer kept is logged and dropped.
func (h *Handler) record(ctx context.Context, t target, rep *bounce.Report) error {
	m, addr, err := h.message(ctx, t)
	if errors.Is(err, ErrGone) {
		h.log.Warn("feedback: report about a message no longer kept; dropped", "message", t.id, "kind", rep.Kind)
		return nil
	}
	if err != nil {
		return err
	}
	e, ok := eventOf(rep)
	if !ok {
		h.log.Info("feedback: report with nothing to record (delivered, relayed or expanded)", "message", m.ID, "to", addr)
		return nil
	}
	e.MessageID, e.Address = m.ID, addr
	var ftype string
	if rep.Feedback != nil {
		ftype = rep.Feedback.Type
	}
	hooks := h.cfg.Webhooks.FeedbackEvents(m, e, ftype)
	if err := h.cfg.Store.AddRecipientEvents(ctx, []queue.RecipientEvent{e}, hooks...); err != nil {
		return err
	}
	if len(hooks) > 0 {
		h.cfg.Webhooks.Notify()
	}
	h.log.Info("feedback: "+string(e.Type), "message", m.ID, "to", addr, "status", e.EnhancedCode,
		"diagnostic", e.Text, "reporting_mta", rep.ReportingMTA, "kind", rep.Kind)
	return nil
}

// eventOf is the recipient event a report makes, from its worst
// per-recipient group: failed, then delayed. A return path names one
// recipient, so every group of a report sent to it is about that
// recipient (or the addresses it expanded to).
func eventOf(rep *bounce.Report) (queue.RecipientEvent, bool) {
	if rep.Kind == bounce.KindFeedback {
		text := "complaint"
		if f := rep.Feedback; f != nil && f.Type != "" {
			text = "complaint: Feedback-Type " + f.Type
			if f.UserAgent != "" {
				text += " from " + f.UserAgent
			}
		}
		return queue.RecipientEvent{Type: queue.HistoryComplained, Text: text}, true
	}
	var delayed *bounce.Recipient
	for i := range rep.Recipients {
		r := &rep.Recipients[i]
		switch r.Action {
		case bounce.ActionFailed:
			return queue.RecipientEvent{Type: queue.HistoryBounced, Code: replyCode(r.DiagnosticCode),
				EnhancedCode: r.Status, Text: diagnostic(r)}, true
		case bounce.ActionDelayed:
			if delayed == nil {
				delayed = r
			}
		}
	}
	if delayed != nil {
		return queue.RecipientEvent{Type: queue.HistoryDelayed, Code: replyCode(delayed.DiagnosticCode),
			EnhancedCode: delayed.Status, Text: diagnostic(delayed)}, true
	}
	return queue.RecipientEvent{}, false
}

// diagnostic is what a recipient's history says of a report group: the
// remote server's reply when the report quotes it.
func diagnostic(r *bounce.Recipient) string {
	text := r.DiagnosticCode
	if text == "" {
		text = "status " + r.Status
	}
	if r.RemoteMTA != "" {
		text += " (reported for " + r.RemoteMTA + ")"
	}
	return text
}

// replyCode reads the SMTP code a diagnostic starts with ("550 5.1.1 …"),
// 0 when it has none.
func replyCode(diag string) int {
	if len(diag) < 3 || (len(diag) > 3 && diag[3] != ' ' && diag[3] != '-') {
		return 0
	}
	n := 0
	for _, c := range diag[:3] {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	if n < 200 || n > 599 {
		return 0
	}
	return n
}

// senderDomain is the domain of an envelope sender, "" for the null one.
func senderDomain(from string) string {
	if i := strings.LastIndexByte(from, '@'); i >= 0 {
		return strings.ToLower(from[i+1:])
	}
	return ""
}
