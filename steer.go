package outbox

import (
	"context"

	"github.com/outbox-mail/outbox/queue"
)

// RetryMessages makes every waiting message sel selects due now (see
// queue.Selection) and returns how many.
func (c *Client) RetryMessages(ctx context.Context, sel queue.Selection) (int, error) {
	n, err := c.cfg.Store.RetryMessages(ctx, sel)
	if n > 0 {
		c.deliverer.Notify()
	}
	return n, err
}

// CancelMessages cancels every waiting message sel selects and returns
// their ids; OnCancel hears of each. The error is the store's: the
// cancellations stand whatever OnCancel says, and its failures are
// logged.
func (c *Client) CancelMessages(ctx context.Context, sel queue.Selection) ([]string, error) {
	ids, err := c.cfg.Store.CancelMessages(ctx, sel)
	if c.cfg.OnCancel == nil {
		return ids, err
	}
	for _, id := range ids {
		m, herr := c.cfg.Store.Get(ctx, id)
		if herr == nil {
			herr = c.cfg.OnCancel(ctx, m)
		}
		if herr != nil {
			c.log.Error("outbox: after cancelling a message", "id", id, "err", herr)
		}
	}
	return ids, err
}
