package dkim

import (
	"bytes"
	"io"
)

// relaxedBody is the "relaxed" body canonicalisation of RFC 6376 §3.4.4
// as a writer over CRLF-normalised input. Empty lines are counted, not
// kept, so a body of any shape is hashed in constant memory (a run of a
// million empty lines costs an integer, not a megabyte).
type relaxedBody struct {
	w       io.Writer
	out     []byte
	blank   int64 // line breaks seen since the last non-white byte
	wsp     bool  // white space seen since the last non-white byte
	written bool  // a non-white byte was written
}

var crlfs = bytes.Repeat([]byte("\r\n"), 64)

// Write canonicalises p into the hash.
func (c *relaxedBody) Write(p []byte) (int, error) {
	out := c.out[:0]
	for _, b := range p {
		switch b {
		case ' ', '\t':
			c.wsp = true
		case '\r':
			// Input is normalised: a CR is always the first half of a CRLF.
		case '\n':
			c.wsp = false // trailing white space is deleted
			c.blank++
		default:
			if c.blank > 0 {
				var err error
				if out, err = c.emitBlank(out); err != nil {
					return 0, err
				}
			}
			if c.wsp {
				out = append(out, ' ')
				c.wsp = false
			}
			out = append(out, b)
		}
	}
	c.out = out[:0]
	if len(out) > 0 {
		c.written = true
		if _, err := c.w.Write(out); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// emitBlank writes the line breaks counted so far after what out holds,
// straight to the hash when there are many, and returns out to go on
// with.
func (c *relaxedBody) emitBlank(out []byte) ([]byte, error) {
	if c.blank <= int64(len(crlfs)/2) {
		out = append(out, crlfs[:2*c.blank]...)
		c.blank = 0
		return out, nil
	}
	if _, err := c.w.Write(out); err != nil {
		return out, err
	}
	for c.blank > 0 {
		k := min(c.blank, int64(len(crlfs)/2))
		if _, err := c.w.Write(crlfs[:2*k]); err != nil {
			return out, err
		}
		c.blank -= k
	}
	return out[:0], nil
}

// Close ends the body: a non-empty body ends with exactly one CRLF, and
// an empty one (or one of empty lines only) canonicalises to nothing.
func (c *relaxedBody) Close() error {
	if !c.written {
		return nil
	}
	_, err := c.w.Write(crlfs[:2])
	return err
}

// relaxedHeader is the "relaxed" header canonicalisation of RFC 6376
// §3.4.2 of one raw field (name, colon, value and continuation lines, its
// final CRLF included or not): lowercase name, no white space around the
// colon, the value unfolded with every run of white space turned into one
// space and none at either end. The result ends with CRLF.
func relaxedHeader(dst, field []byte) []byte {
	name, value, _ := bytes.Cut(field, []byte(":"))
	name = bytes.TrimRight(name, " \t")
	for _, b := range name {
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		dst = append(dst, b)
	}
	dst = append(dst, ':')
	wsp := false
	started := false
	for _, b := range value {
		switch b {
		case '\r', '\n':
			// unfolding removes the line breaks
		case ' ', '\t':
			wsp = true
		default:
			if wsp && started {
				dst = append(dst, ' ')
			}
			wsp = false
			started = true
			dst = append(dst, b)
		}
	}
	return append(dst, '\r', '\n')
}
