// Package mime7 makes a stored message fit a destination's transport
// without changing what it decodes to: Downgrade re-encodes it as 7-bit
// MIME for a server that does not offer 8BITMIME (RFC 6152 §3),
// LimitLines shortens lines over 998 octets for one that does, and Check
// lets a message through unchanged while refusing one that neither could
// mend.
//
// Each works on a stream in constant memory, whatever the size of the
// message. A MIME part (a leaf) that holds 8-bit bytes, NUL or a line over
// 998 octets is re-encoded, as quoted-printable when it is mostly ASCII
// and base64 otherwise, and its Content-Transfer-Encoding field replaced
// (with MIME-Version added to a message that had none); every other part
// is passed on byte for byte, line endings aside: bare CR and LF become
// CRLF, as the SMTP client makes them on the wire. Multiparts are walked
// part by part and message/rfc822 parts entered (RFC 2046 forbids encoding
// those whole, so their own parts are re-encoded and their label becomes
// 7bit); parts already in quoted-printable or base64 keep their encoding,
// with 8-bit bytes escaped (quoted-printable) or dropped (base64, whose
// decoders ignore them) and long lines broken. Whether a 7bit-labelled
// part needs re-encoding shows only in its body, so the part is held until
// it does (in memory up to 64 KiB, then in an unlinked temporary file).
//
// What cannot be mended is an *Error: 8-bit bytes in a header, which only
// SMTPUTF8 could carry (RFC 6532), or in parts no encoding may be applied
// to (message/partial, message/external-body and other message types, a
// multipart's preamble and epilogue, unknown encodings), and header lines
// over 998 octets.
package mime7

import (
	"bytes"
	"errors"
	"io"
)

// Error says why a message cannot be made to fit. It is permanent: the
// same message fails the same way on every attempt. A delivery that gets
// it from Downgrade's reader answers the recipient with 554 5.6.3
// (conversion required but not supported) and the Reason; the submission
// listener refuses a message Check fails with 554 5.6.0.
type Error struct {
	Reason string
}

func (e *Error) Error() string { return "mime7: " + e.Reason }

// Downgrade returns r's message as 7-bit MIME: every line 7-bit and at
// most 998 octets long, decoding to the same content. A problem seen in
// the first header block is returned at once, before anything is read;
// one seen later is returned by the reader's Read. Either is an *Error,
// or the error r returned. The reader must be read to its end (or the
// error) for its temporary file, if it needed one, to be removed at
// once; otherwise it is removed when the reader is garbage collected.
func Downgrade(r io.Reader) (io.Reader, error) { return start(r, mode7bit) }

// LimitLines returns r's message with every line at most 998 octets
// long, re-encoding only the parts that have longer lines (or NUL): for a
// destination that takes 8BITMIME, where 8-bit parts may stay as they
// are. Errors and the temporary file are as for Downgrade.
func LimitLines(r io.Reader) (io.Reader, error) { return start(r, modeLines) }

// Check returns a reader that yields r's bytes unchanged and fails, with
// an *Error, when the message has a line over 998 octets that
// LimitLines could not shorten: in a header, a multipart's preamble or
// epilogue, or a part no encoding may be applied to. It holds nothing
// back, so it fits the accepting side of a submission.
func Check(r io.Reader) io.Reader {
	e := newEngine(r, modeCheck)
	return e
}

// Verify reads r through and returns Check's *Error when it has a line
// over 998 octets that LimitLines could not shorten, nil otherwise: for
// a store that runs it over a body it has spooled already.
func Verify(r io.Reader) error {
	_, err := io.Copy(io.Discard, Check(r))
	return err
}

type mode int

const (
	mode7bit  mode = iota // Downgrade
	modeLines             // LimitLines
	modeCheck             // Check
)

func start(r io.Reader, m mode) (io.Reader, error) {
	e := newEngine(r, m)
	// Work through the message's own header block, so that a header that
	// cannot be sent is known before the caller commits to sending.
	for e.err == nil && !e.firstDone && e.out.Len() < 64<<10 {
		e.step()
	}
	var ce *Error
	if errors.As(e.err, &ce) {
		e.close()
		return nil, e.err
	}
	return e, nil
}

var crlf = []byte("\r\n")

// maxLine is RFC 5322's line limit, without the CRLF.
const maxLine = 998

func isWSP(c byte) bool { return c == ' ' || c == '\t' }

// eightBit reports whether b holds a byte with the high bit set.
func eightBit(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return true
		}
	}
	return false
}

// hasNUL reports a NUL byte, which neither 7bit nor 8bit data may hold.
func hasNUL(b []byte) bool { return bytes.IndexByte(b, 0) >= 0 }
