package smtp

import (
	"bufio"
	"io"

	"github.com/outbox-mail/outbox/internal/crlf"
)

// normaliser returns the client's body normaliser reading r: crlf.Reader,
// the one the DKIM signer uses too, so a signature covers exactly the
// bytes sent. A Client
// sends one message at a time, so one reader (48 KiB of buffers) serves
// all its messages instead of one allocated for each.
func (c *Client) normaliser(r io.Reader) *crlf.Reader {
	if c.norm == nil {
		c.norm = crlf.NewReader(r)
	} else {
		c.norm.Reset(r)
	}
	return c.norm
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
