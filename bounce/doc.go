// Package bounce handles what comes back after a message left: it makes
// and checks VERP return paths that name the message and recipient a
// bounce is about, and parses the reports that arrive at them — delivery
// status notifications (RFC 3464, RFC 6533), complaint feedback reports
// (ARF, RFC 5965) and the commonest plain-text bounces — as a stream,
// within a size limit, keeping only the fields it returns.
package bounce
