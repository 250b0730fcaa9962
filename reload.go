package outbox

import (
	"github.com/outbox-mail/outbox/delivery"
	"github.com/outbox-mail/outbox/dkim"
)

// SetRouting puts new routing in force while the client runs, as
// delivery.Deliverer.SetRouting does: mail under way finishes on its old
// route, recipients looked up from then on take the new one. A Client made
// without Config.Routing cannot take routing later.
func (c *Client) SetRouting(r *delivery.Routing) error { return c.deliverer.SetRouting(r) }

// SetDKIM replaces the DKIM signer while the client runs, as
// delivery.Deliverer.SetDKIM does; nil stops signing.
func (c *Client) SetDKIM(s *dkim.Signer) { c.deliverer.SetDKIM(s) }
