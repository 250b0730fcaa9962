// Package smtp is the SMTP client every outbox delivery goes through.
//
// A Client is one session: Dial connects, reads the greeting, says EHLO
// (HELO when refused), applies the STARTTLS policy (or implicit TLS) and
// authenticates with the strongest mechanism offered (XOAUTH2, CRAM-MD5,
// PLAIN, LOGIN). Send runs one mail transaction and reports the outcome
// per recipient. When the server offers PIPELINING and CHUNKING, MAIL,
// every RCPT and "BDAT n LAST" with the body go in one write, so a small
// message costs one round trip on a warm connection; without them the
// client falls back to DATA and to one command at a time.
//
// Negative replies are *Error values carrying the code, the RFC 3463
// enhanced code and the text; a check the client makes itself has the
// same form with Local set, and reads as a local decision. Connection-
// level failures (network errors, timeouts, cancellation, replies that
// break the protocol, a 421 at any stage) are *ConnError values that
// match ErrConnection. After a connection-level failure every recipient
// not acknowledged carries that error: defer it.
//
// STARTTLS is required (verified) with credentials and opportunistic
// (RFC 7435) without: encrypted whatever the certificate, with a retry in
// plain text when the handshake itself fails. A failed session setup
// ends with QUIT.
//
// A Pool keeps connections to one route for reuse, bounded in number, age,
// idle time and messages per connection. A connection the server closed
// is never handed out: an idle check at checkout, then a transparent
// resend on a new connection when the transaction fails before its first
// reply. A Transcript hook sees each line of a session with credentials
// replaced by *** and bodies summarised, and the client's own notes.
// ParseRelayURL reads smtp:// and smtps:// relay URLs.
package smtp
