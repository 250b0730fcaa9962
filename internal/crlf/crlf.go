// Package crlf normalises line endings as outbox sends a message: bare LF
// and bare CR become CRLF, and content that does not end with a line
// break gets one. The DKIM signer and the SMTP client must agree on this
// byte for byte — a signature is over what goes on the wire — so both
// are meant to use this one Reader.
package crlf

import "io"

// Reader yields its source's bytes normalised. It reuses its buffers, so
// it allocates nothing while it reads.
type Reader struct {
	r       io.Reader
	buf     []byte
	back    []byte // out's backing array, reused by every fill
	out     []byte // normalised bytes not yet returned
	cr      bool   // the last input byte was CR
	lastLF  bool   // the last output byte was LF
	written bool   // anything was output
	err     error
}

// NewReader returns a Reader of r.
func NewReader(r io.Reader) *Reader {
	// At most two output bytes per input byte, plus the final CRLF: back
	// never grows past its first size.
	return &Reader{r: r, buf: make([]byte, 16<<10), back: make([]byte, 0, 32<<10+2)}
}

// Reset makes the Reader read r from the start, keeping its buffers.
func (c *Reader) Reset(r io.Reader) {
	*c = Reader{r: r, buf: c.buf, back: c.back[:0]}
}

// Read returns normalised bytes. The first error of the source, io.EOF
// included, is returned on every Read once the bytes before it are out.
func (c *Reader) Read(p []byte) (int, error) {
	for len(c.out) == 0 {
		if c.err != nil {
			return 0, c.err
		}
		c.fill()
	}
	n := copy(p, c.out)
	c.out = c.out[n:]
	return n, nil
}

// fill reads one block from the source and normalises it into out.
func (c *Reader) fill() {
	n, err := c.r.Read(c.buf)
	out := c.back[:0]
	for _, b := range c.buf[:n] {
		if c.cr {
			c.cr = false
			out = append(out, '\r', '\n')
			if b == '\n' {
				continue
			}
		}
		switch b {
		case '\r':
			c.cr = true
			continue
		case '\n':
			out = append(out, '\r', '\n')
			continue
		}
		out = append(out, b)
	}
	if err != nil {
		if c.cr {
			c.cr = false
			out = append(out, '\r', '\n')
		}
		if err == io.EOF && (len(out) > 0 || c.written) {
			if len(out) > 0 {
				c.lastLF = out[len(out)-1] == '\n'
			}
			if !c.lastLF {
				out = append(out, '\r', '\n')
			}
		}
		c.err = err
	}
	if len(out) > 0 {
		c.written = true
		c.lastLF = out[len(out)-1] == '\n'
	}
	c.back, c.out = out[:0], out
}
