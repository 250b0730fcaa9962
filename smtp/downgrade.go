package smtp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// errNo8BitMIME is the local refusal of an 8-bit body for a server
// without 8BITMIME when no downgrade is possible.
var errNo8BitMIME = &Error{Command: "MAIL FROM", Code: 554, EnhancedCode: EnhancedCode{5, 6, 3},
	Message: "message has 8-bit content and the server does not support 8BITMIME", Local: true}

// prepare sets the body to send on this connection: normalised to CRLF,
// and converted by SendOptions.Downgrade when it is 8-bit and the server
// does not offer 8BITMIME.
func (t *txn) prepare(body io.Reader) {
	if t.needsDowngrade() {
		t.downgrade(body)
		return
	}
	t.body = t.c.normaliser(body)
}

func (t *txn) needsDowngrade() bool {
	ok, _ := t.c.Extension("8BITMIME")
	return t.env.EightBit && !ok && !t.downgraded
}

// downgrade wraps body in the Downgrade hook, or refuses the send.
func (t *txn) downgrade(body io.Reader) {
	if t.so.Downgrade == nil {
		t.prepErr = errNo8BitMIME
		return
	}
	src := &sourceReader{r: body}
	d, err := t.so.Downgrade(src)
	if err != nil && src.err != nil {
		t.prepErr = fmt.Errorf("smtp: reading message body: %w", err) // the body failed, not the conversion
		return
	}
	if err != nil {
		t.prepErr = downgradeError(err)
		return
	}
	t.body = t.c.normaliser(&downgradedReader{r: d, src: src})
	t.downgraded = true
	t.res.Downgraded = true
}

// again is the transaction t, which failed before its first reply on a
// connection the server had closed, set up to run from the start on c:
// the chunk already read goes first, then the rest of the same stream, so
// no byte of the body is lost or read twice.
func (t *txn) again(c *Client) *txn {
	n := c.newTxn(t.env, t.so, t.quit)
	var body io.Reader = t.body
	if t.pending != nil {
		body = io.MultiReader(bytes.NewReader(t.pending), t.body)
		t.c.chunkBuf = nil // the old client is closed; the chunk now belongs to n
	}
	n.downgraded = t.downgraded
	n.res.Downgraded = t.downgraded
	if n.needsDowngrade() { // the new server lacks 8BITMIME, the old one had it
		n.downgrade(body)
	} else {
		n.body = body // already normalised (and downgraded when it had to be)
	}
	return n
}

// sourceReader records the caller's body's own read error, so that an
// error coming out of the downgraded reader can be told apart from it.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// downgradedReader marks the downgrader's own errors.
type downgradedReader struct {
	r   io.Reader
	src *sourceReader
}

func (d *downgradedReader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if err != nil && err != io.EOF && d.src.err == nil {
		err = &conversionError{err}
	}
	return n, err
}

// conversionError is an error of the downgrader, not of the body.
type conversionError struct{ err error }

func (e *conversionError) Error() string { return e.err.Error() }
func (e *conversionError) Unwrap() error { return e.err }

// downgradeError is the local permanent refusal for a body the
// downgrader could not convert.
func downgradeError(err error) *Error {
	return &Error{Command: "MAIL FROM", Code: 554, EnhancedCode: EnhancedCode{5, 6, 3},
		Message: "cannot convert the 8-bit message to 7-bit for a server without 8BITMIME: " + err.Error(), Local: true}
}

// bodyErr is the error a failed read of the body gives the transaction:
// a conversion failure is a local permanent 5.6.3; anything else is the
// body's own error (a spool file that cannot be read, a cancelled
// composer), never a connection failure.
func (t *txn) bodyErr(err error) error {
	var ce *conversionError
	if errors.As(err, &ce) {
		return downgradeError(ce.err)
	}
	return fmt.Errorf("smtp: reading message body: %w", err)
}

// abortChunks ends a BDAT transaction whose body failed between chunks:
// the replies still due are read, then RSET discards what was sent
// (RFC 3030 §2). The session stays usable when all of that succeeds.
func (t *txn) abortChunks(outstanding int, cause error) error {
	c := t.c
	for ; outstanding > 0; outstanding-- {
		if _, err := c.readReplyTimeout("BDAT", c.opts.Timeouts.MailRcpt); err != nil {
			return cause
		}
	}
	c.writeLine("RSET", "RSET")
	if c.flush("RSET", c.opts.Timeouts.Command) == nil && t.expectRSET() == nil {
		c.needReset = false
	}
	return cause
}

// abortData ends a DATA transaction whose body failed after the 354: no
// command can interrupt DATA and the final dot would deliver half a
// message, so the connection is closed without it.
func (t *txn) abortData(cause error) error {
	c := t.c
	c.trace(Note, "message body failed; closing the connection so the server discards the partial message")
	c.fail("DATA", fmt.Errorf("transaction aborted: %w", cause))
	return cause
}
