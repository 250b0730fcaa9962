package message

import (
	"encoding/base64"
	"io"
	"mime/quotedprintable"
	"strings"
	"unicode/utf8"
)

var b64 = base64.StdEncoding

// Transfer encodings, as written in Content-Transfer-Encoding.
const (
	enc7bit   = "7bit"
	enc8bit   = "8bit"
	encQP     = "quoted-printable"
	encBase64 = "base64"
)

// normText normalises a text body: CRLF line endings, and a final line
// break so that the message (or part) ends at the end of a line.
func normText(s string) string {
	s = toCRLF(s)
	if s != "" && !strings.HasSuffix(s, "\r\n") {
		s += "\r\n"
	}
	return s
}

// toCRLF normalises every line ending (CRLF, lone LF, lone CR) to CRLF,
// the only one RFC 5322 allows.
func toCRLF(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + len(s)/32)
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\r':
			if i+1 < len(s) && s[i+1] == '\n' {
				i++
			}
			b.WriteString("\r\n")
		case '\n':
			b.WriteString("\r\n")
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// chooseEncoding picks the lightest transfer encoding that carries the
// CRLF-normalised text s intact: identity when every line fits in 998
// octets and the bytes are 7-bit (or 8-bit, when the server takes
// 8BITMIME); otherwise quoted-printable for mostly-ASCII text and base64
// for the rest, since QP triples every non-ASCII byte.
func chooseEncoding(s string, allow8bit bool) string {
	high, ctl, line, longest := 0, 0, 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\r' && i+1 < len(s) && s[i+1] == '\n':
			longest = max(longest, line)
			line = -1
			i++
		case c >= 0x80:
			high++
		case c == 0 || c == '\r' || c == '\n' || c < 0x20 && c != '\t' || c == 0x7f:
			ctl++
		}
		line++
	}
	longest = max(longest, line)
	identity := ctl == 0 && longest <= maxLineLen
	switch {
	case identity && high == 0:
		return enc7bit
	case identity && allow8bit && utf8.ValidString(s):
		return enc8bit
	case (high+ctl)*3 < len(s):
		return encQP
	}
	return encBase64
}

// writeText writes s (already CRLF-normalised) in the given encoding.
func writeText(w io.Writer, s, enc string) error {
	switch enc {
	case encQP:
		qp := quotedprintable.NewWriter(w)
		if _, err := io.WriteString(qp, s); err != nil {
			return err
		}
		if err := qp.Close(); err != nil {
			return err
		}
	case encBase64:
		bw := newBase64Writer(w)
		if _, err := io.WriteString(bw, s); err != nil {
			return err
		}
		if err := bw.Close(); err != nil {
			return err
		}
	default:
		if _, err := io.WriteString(w, s); err != nil {
			return err
		}
	}
	return nil
}

// b64LineIn is the number of input bytes that make one 76-column line.
const b64LineIn = 57

// base64Writer encodes to base64 in lines of 76 columns with a fixed
// buffer, whatever the size of the input: the streaming half of the cure
// for attachments that would not fit in memory.
type base64Writer struct {
	w    io.Writer
	in   [b64LineIn]byte
	n    int                            // bytes pending in in
	line [b64LineIn/3*4 + 2]byte        // one encoded line with CRLF
	out  [64 * (b64LineIn/3*4 + 2)]byte // a batch of lines per Write
	used int
}

func newBase64Writer(w io.Writer) *base64Writer { return &base64Writer{w: w} }

// Write encodes p, holding back at most one partial line.
func (e *base64Writer) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		if e.n == 0 && len(p) >= b64LineIn {
			if err := e.emit(p[:b64LineIn]); err != nil {
				return total - len(p), err
			}
			p = p[b64LineIn:]
			continue
		}
		c := copy(e.in[e.n:], p)
		e.n += c
		p = p[c:]
		if e.n == b64LineIn {
			e.n = 0
			if err := e.emit(e.in[:]); err != nil {
				return total - len(p), err
			}
		}
	}
	return total, e.flushIfFull()
}

// emit encodes one line into the batch buffer.
func (e *base64Writer) emit(chunk []byte) error {
	l := b64.EncodedLen(len(chunk))
	b64.Encode(e.line[:l], chunk)
	e.line[l], e.line[l+1] = '\r', '\n'
	if e.used+l+2 > len(e.out) {
		if err := e.flush(); err != nil {
			return err
		}
	}
	e.used += copy(e.out[e.used:], e.line[:l+2])
	return nil
}

func (e *base64Writer) flushIfFull() error {
	if e.used+len(e.line) > len(e.out) {
		return e.flush()
	}
	return nil
}

func (e *base64Writer) flush() error {
	if e.used == 0 {
		return nil
	}
	_, err := e.w.Write(e.out[:e.used])
	e.used = 0
	return err
}

// Close writes the last, partial line with its padding and flushes.
func (e *base64Writer) Close() error {
	if e.n > 0 {
		if err := e.emit(e.in[:e.n]); err != nil {
			return err
		}
		e.n = 0
	}
	return e.flush()
}
