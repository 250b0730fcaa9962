package bounce

import (
	"fmt"
	"strings"
)

// unsubscribePrefix starts the local part of the unsubscribe address
// that goes with a return path: "unsubscribe+" and the return path's
// token, at most 64 characters (RFC 5321's limit).
const unsubscribePrefix = "unsubscribe+"

// UnsubscribeAddress returns the address that unsubscribes recipient
// rcpt of message id when mail is sent to it (the mailto: of RFC 2369
// List-Unsubscribe): unsubscribe+TOKEN@DOMAIN, TOKEN being the return
// path's. It names no more than the return path does, which the
// recipient sees anyway.
func (v *VERP) UnsubscribeAddress(id string, rcpt int) (string, error) {
	rp, err := v.ReturnPath(id, rcpt)
	if err != nil {
		return "", err
	}
	return unsubscribePrefix + rp[len(verpPrefix):], nil
}

// ParseUnsubscribe is Parse for an address made by UnsubscribeAddress:
// it returns the message id and recipient index it names, an error
// wrapping ErrNotVERP for any other address, and one wrapping
// ErrBadToken for a token that does not verify.
func (v *VERP) ParseUnsubscribe(addr string) (id string, rcpt int, err error) {
	if len(addr) < len(unsubscribePrefix) || !strings.EqualFold(addr[:len(unsubscribePrefix)], unsubscribePrefix) {
		return "", 0, fmt.Errorf("%w: %q does not start with %q", ErrNotVERP, addr, unsubscribePrefix)
	}
	return v.Parse(verpPrefix + addr[len(unsubscribePrefix):])
}
