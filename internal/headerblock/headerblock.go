// Package headerblock reads the header block of an RFC 5322 message,
// repairs what an MSA may repair (a missing Date, Message-ID or header
// block, RFC 6409 §8) and removes the fields that must not reach the
// recipients (Bcc and Resent-Bcc), as Postfix's cleanup does. It works
// line by line on a stream: the body is never held in memory, and a
// header block too large for memory goes to a temporary file.
package headerblock

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// ErrTooLarge is returned by Read when the header block is longer than the
// limit it was given.
var ErrTooLarge = errors.New("headerblock: header block too large")

// Read reads the header block from br, up to and including the empty
// line that ends it, or to the end of a message that has no body, and
// returns it as read with what it says (Info). A message whose first line
// cannot be a header field has no header block: Read then returns nothing
// and Info.NoHeader, leaving that line in br. It reads at most max bytes
// and returns ErrTooLarge if the block is longer. What follows the block
// is left in br.
func Read(br *bufio.Reader, max int) ([]byte, Info, error) {
	var hdr []byte
	info, err := readBlock(br, int64(max), func(p []byte) error {
		hdr = append(hdr, p...)
		return nil
	})
	if err != nil {
		return nil, Info{}, err
	}
	return hdr, info, nil
}

// isBlank reports whether line (its end included) is the empty line that
// ends a header block: nothing but CRs before the LF.
func isBlank(line []byte) bool {
	rest, ok := bytes.CutSuffix(line, []byte("\n"))
	return ok && len(bytes.TrimLeft(rest, "\r")) == 0
}

// nameWindow bounds how much of a line is looked at to find its field name.
const nameWindow = 1024

// StripBcc returns a reader that yields r's bytes without the Bcc and
// Resent-Bcc header fields (each with its continuation lines). Everything
// else, the empty line that ends the header block and the body, passes
// through byte for byte. A message without that empty line is all header.
// At most one short stretch of a line is buffered at a time, so the header
// block may be of any size. If r is a *bufio.Reader it is read directly.
// The first error r returns, io.EOF included, is returned again on every
// later Read.
func StripBcc(r io.Reader) io.Reader {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, nameWindow)
	}
	return &stripper{r: br, lineStart: true}
}

type stripper struct {
	r         *bufio.Reader
	err       error // the first error r returned
	lineStart bool  // the next byte starts a line
	drop      bool  // the current field is being removed
	blank     bool  // the current line ends the header block
	body      bool  // past the header block
}

// fail remembers r's first error.
func (s *stripper) fail(err error) error {
	if s.err == nil {
		s.err = err
	}
	return s.err
}

func (s *stripper) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if s.body {
			if n > 0 {
				return n, nil
			}
			if s.err != nil && s.r.Buffered() == 0 {
				return 0, s.err
			}
			m, err := s.r.Read(p)
			if err != nil {
				err = s.fail(err)
			}
			return m, err
		}
		if s.err != nil && s.r.Buffered() == 0 {
			return n, s.err
		}
		if _, err := s.r.Peek(1); err != nil && s.r.Buffered() == 0 {
			return n, s.fail(err)
		}
		if s.lineStart {
			s.classify()
		}
		buf, _ := s.r.Peek(s.r.Buffered())
		k, ended := len(buf), false
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			k, ended = i+1, true
		}
		if !s.drop {
			if k > len(p)-n {
				k, ended = len(p)-n, false
			}
			n += copy(p[n:], buf[:k])
		}
		s.r.Discard(k)
		s.lineStart = ended
		if ended && s.blank {
			s.body = true
		}
	}
	return n, nil
}

// classify looks at the start of a line (at least one byte is buffered)
// and decides whether it ends the header block and whether it is removed.
// A continuation line belongs to the field before it.
func (s *stripper) classify() {
	s.lineStart = false
	buf, _ := s.r.Peek(s.r.Buffered())
	if buf[0] == ' ' || buf[0] == '\t' {
		s.blank = false
		return
	}
	window := min(nameWindow, s.r.Size())
	if bytes.IndexAny(buf, ":\n") < 0 && len(buf) < window {
		var err error
		if buf, err = s.r.Peek(window); err != nil {
			s.fail(err)
		}
	}
	name := buf[:min(len(buf), window)]
	delim := byte(0)
	if i := bytes.IndexAny(name, ":\n"); i >= 0 {
		name, delim = name[:i], name[i]
	}
	s.blank = delim == '\n' && len(bytes.TrimLeft(name, "\r")) == 0
	// A name cut off by the window counts if all it holds after Bcc is
	// white space: a field the window cannot show whole is not let through.
	name = bytes.TrimRight(name, " \t\r")
	s.drop = bytes.EqualFold(name, []byte("bcc")) || bytes.EqualFold(name, []byte("resent-bcc"))
}
