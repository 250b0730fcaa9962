package smtp

import (
	"bufio"
	"io"
)

// crlfReader normalises line endings to CRLF (bare LF and bare CR become
// CRLF) and makes sure non-empty content ends with CRLF.
type crlfReader struct {
	r       io.Reader
	buf     []byte
	store   []byte // out's backing array, reused by every fill
	out     []byte // normalised bytes not yet returned
	cr      bool   // last input byte was CR
	lastLF  bool   // last output byte was LF
	written bool   // anything was output
	err     error
}

func newCRLFReader(r io.Reader) *crlfReader {
	// At most two output bytes per input byte, plus the final CRLF: store
	// never grows past its first size.
	return &crlfReader{r: r, buf: make([]byte, 16<<10), store: make([]byte, 0, 32<<10+2)}
}

// Read returns normalised bytes.
func (c *crlfReader) Read(p []byte) (int, error) {
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
func (c *crlfReader) fill() {
	n, err := c.r.Read(c.buf)
	// From the start of the backing array: out, once read to its end, has
	// no capacity left, and appending to it would allocate every block.
	out := c.store[:0]
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
	c.store, c.out = out, out
}

// dotWriter writes normalised (CRLF) text for DATA, doubling a dot at the
// start of a line. It counts the bytes of body it was given.
type dotWriter struct {
	w         *bufio.Writer
	lineStart bool
	n         int64
}

// Write dot-stuffs p into the buffered writer.
func (d *dotWriter) Write(p []byte) (int, error) {
	start := 0
	for i, b := range p {
		if d.lineStart && b == '.' {
			if _, err := d.w.Write(p[start:i]); err != nil {
				return start, err
			}
			if err := d.w.WriteByte('.'); err != nil {
				return i, err
			}
			start = i
		}
		d.lineStart = b == '\n'
	}
	_, err := d.w.Write(p[start:])
	d.n += int64(len(p))
	return len(p), err
}

// close writes the terminating dot line.
func (d *dotWriter) close() error {
	_, err := d.w.WriteString(".\r\n")
	return err
}
