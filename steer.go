package outbox

import (
	"context"
	"errors"

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
// their ids; OnCancel hears of each. The cancellations stand even when
// OnCancel fails for some: the first of its errors is returned.
func (c *Client) CancelMessages(ctx context.Context, sel queue.Selection) ([]string, error) {
	ids, err := c.cfg.Store.CancelMessages(ctx, sel)
	if c.cfg.OnCancel == nil {
		return ids, err
	}
	var errs []error
	for _, id := range ids {
		m, gerr := c.cfg.Store.Get(ctx, id)
		if gerr == nil {
			gerr = c.cfg.OnCancel(ctx, m)
		}
		if gerr != nil && !errors.Is(gerr, queue.ErrNotFound) {
			errs = append(errs, gerr)
		}
	}
	if err == nil && len(errs) > 0 {
		err = errs[0]
	}
	return ids, err
}
