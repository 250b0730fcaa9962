package feedback

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/outbox-mail/outbox/queue"
	"github.com/outbox-mail/outbox/unsubscribe"
)

// ErrNoLinks: the daemon makes no unsubscribe links, so it takes no
// token.
var ErrNoLinks = errors.New("feedback: unsubscribe links are not enabled")

// Subscription returns what an unsubscribe token names, changing
// nothing (the confirmation page a GET shows). A token that does not
// verify gives an error wrapping unsubscribe.ErrBadToken.
func (h *Handler) Subscription(tok string) (unsubscribe.Subscription, error) {
	if h.cfg.Tokens == nil {
		return unsubscribe.Subscription{}, ErrNoLinks
	}
	return h.cfg.Tokens.Parse(tok)
}

// Unsubscribe applies a one-click unsubscribe (RFC 8058): the address
// the token names is suppressed for the sender domain it names, and an
// "unsubscribed" event is recorded with it. It changes nothing else:
// the token is the only authority, and it names what it changes. An
// address already unsubscribed from that domain stays so, without a
// second event.
func (h *Handler) Unsubscribe(ctx context.Context, tok string) (unsubscribe.Subscription, error) {
	sub, err := h.Subscription(tok)
	if err != nil {
		return sub, err
	}
	return sub, h.suppress(ctx, sub.Address, sub.Domain, "", "one-click unsubscribe (RFC 8058 link)")
}

// unsubscribeRecipient applies mail to the unsubscribe address of
// recipient t: its address is suppressed for the message's sender
// domain. A message no longer kept names no address: that is refused.
func (h *Handler) unsubscribeRecipient(ctx context.Context, t target) error {
	m, addr, err := h.message(ctx, t)
	if err != nil {
		return err
	}
	return h.suppress(ctx, addr, senderDomain(m.From), m.ID, "mail to the List-Unsubscribe address")
}

// suppress unsubscribes addr from domain's mail with its webhook events,
// unless it already is.
func (h *Handler) suppress(ctx context.Context, addr, domain, messageID, how string) error {
	if domain == "" {
		return fmt.Errorf("%w: no sender domain to unsubscribe %s from", unsubscribe.ErrBadToken, addr)
	}
	s, err := h.cfg.Store.LookupSuppression(ctx, addr, domain)
	switch {
	case err == nil && s.Cause == queue.CauseUnsubscribed && s.Scope == domain:
		h.log.Info("feedback: already unsubscribed", "to", addr, "domain", domain)
		return nil
	case err != nil && !errors.Is(err, queue.ErrNotFound):
		return err
	}
	now := time.Now()
	hooks := h.cfg.Webhooks.UnsubscribedEvents(addr, domain, messageID, now)
	err = h.cfg.Store.Suppress(ctx, []queue.Suppression{{Address: addr, Scope: domain, Cause: queue.CauseUnsubscribed,
		MessageID: messageID, Reason: how, CreatedAt: now}}, hooks...)
	if err != nil {
		return err
	}
	if len(hooks) > 0 {
		h.cfg.Webhooks.Notify()
	}
	h.log.Info("feedback: unsubscribed", "to", addr, "domain", domain, "message", messageID, "how", how)
	return nil
}
