package mime7

import (
	"encoding/base64"
	"io"
	"mime/quotedprintable"
)

// sample is how much of a part labelled 8bit is held before choosing
// between quoted-printable and base64 for it.
const sample = 4 << 10

// inputBodyLine handles a body line from the input: a delimiter ends the
// leaf.
func (e *engine) inputBodyLine(l line) {
	if i, closing, ok := e.boundary(l); ok {
		e.endLeaf(false)
		e.delimiter(l, i, closing)
		return
	}
	e.leafLine(l)
}

// leafLine handles a line (or piece) of a leaf's body, from the input or
// read back from the hold.
func (e *engine) leafLine(l line) {
	e.trackLine(l)
	if l.first {
		e.mend = e.lineLen > maxLine || e.mode == mode7bit && eightBit(l.text) || e.mode != modeCheck && hasNUL(l.text)
	}
	switch e.body {
	case bodyRaw:
		e.emit(l)
	case bodyHold:
		e.holdLine(l)
		for _, c := range l.text {
			if c >= 0x80 || c < 0x20 && c != '\t' || c == 0x7f {
				e.high++
			}
		}
		e.total += int64(len(l.text)) + int64(len(l.eol))
		if e.lineLen > maxLine || hasNUL(l.text) || e.mode == mode7bit && eightBit(l.text) {
			e.forced = true
		}
		// Once re-encoding is certain, a few KiB more show which encoding
		// suits the part.
		if e.forced && e.hold.size-e.h.bodyStart >= sample {
			e.startEncode()
		}
	case bodyEncode:
		e.enc.piece(l.text, l.eol != nil)
	case bodyQP:
		e.mendQP(l)
	case bodyB64:
		e.mendB64(l)
	case bodyOpaque:
		switch {
		case e.lineLen > maxLine:
			e.failf("a part that no encoding may be applied to (message/partial, message/external-body, other message types, or an unknown Content-Transfer-Encoding) has a line longer than 998 octets")
		case e.mode == mode7bit && eightBit(l.text) || e.mode != modeCheck && hasNUL(l.text):
			e.failf("a part that no encoding may be applied to (message/partial, message/external-body, other message types, or an unknown Content-Transfer-Encoding) holds 8-bit data")
		default:
			e.emit(l)
		}
	}
}

// startEncode re-encodes the held leaf: its header without the old
// Content-Transfer-Encoding, then what is held of its body, then the rest
// as it comes. Quoted-printable keeps mostly-ASCII text readable; base64
// is shorter for the rest, since quoted-printable triples each 8-bit byte.
func (e *engine) startEncode() {
	b64 := e.high*3 >= e.total
	cte := "quoted-printable"
	if b64 {
		cte = "base64"
	}
	e.enc = newContentWriter(&e.out, b64)
	e.body = bodyEncode
	e.rewriteHeader(cte, newLineReader(e.hold.section(e.h.bodyStart, e.hold.size)))
}

// endLeaf handles the end of a leaf's body: at a delimiter, or at the end
// of the input (eof).
func (e *engine) endLeaf(eof bool) {
	if e.body == bodyHold {
		if !e.forced {
			e.flushHold() // 7-bit after all: passed on as it was
			return
		}
		e.startEncode()
	}
	if e.body == bodyEncode {
		// The held lines still to be replayed go to e.enc before this runs.
		enc := e.enc
		e.later(func() { enc.end(eof) })
	}
	if e.body == bodyQP && len(e.qpCarry) > 0 {
		carry := e.qpCarry
		e.later(func() { e.out.Write(carry) })
	}
}

// mendQP passes a quoted-printable line on, escaping NUL and 8-bit bytes
// (for Downgrade) and breaking a line over 998 octets with soft line breaks,
// never inside an "=XX" escape.
func (e *engine) mendQP(l line) {
	if !e.mend {
		e.emit(l)
		return
	}
	if l.first {
		e.col = 0
	}
	t := append(e.qpCarry[:len(e.qpCarry):len(e.qpCarry)], l.text...)
	e.qpCarry = e.qpCarry[:0]
	var out []byte
	for i := 0; i < len(t); {
		tok, n := t[i:i+1], 1
		switch {
		case t[i] == '=' && i+2 < len(t) && isHex(t[i+1]) && isHex(t[i+2]):
			tok, n = t[i:i+3], 3
		case t[i] == '=' && l.eol == nil && len(t)-i < 3:
			e.qpCarry = append(e.qpCarry, t[i:]...) // may be an escape cut by the piece's end
			i = len(t)
			continue
		case t[i] >= 0x80 && e.mode == mode7bit || t[i] == 0:
			tok = []byte{'=', hexDigits[t[i]>>4], hexDigits[t[i]&15]}
		}
		if e.col+len(tok) > 75 {
			out = append(out, "=\r\n"...)
			e.col = 0
		}
		out = append(out, tok...)
		e.col += len(tok)
		i += n
	}
	if l.eol != nil {
		out = append(out, e.eol(l)...)
	}
	e.later(func() { e.out.Write(out) })
}

// mendB64 passes a base64 line on, dropping NUL and 8-bit bytes (which
// decoders ignore, RFC 2045 §6.8) for Downgrade and breaking a line over 998
// octets into lines of 76.
func (e *engine) mendB64(l line) {
	if !e.mend {
		e.emit(l)
		return
	}
	if l.first {
		e.col = 0
	}
	var out []byte
	for _, c := range l.text {
		if c >= 0x80 && e.mode == mode7bit || c == 0 {
			continue
		}
		if e.col == 76 {
			out = append(out, crlf...)
			e.col = 0
		}
		out = append(out, c)
		e.col++
	}
	if l.eol != nil {
		out = append(out, e.eol(l)...)
	}
	e.later(func() { e.out.Write(out) })
}

const hexDigits = "0123456789ABCDEF"

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'A' <= c && c <= 'F' || 'a' <= c && c <= 'f'
}

// contentWriter re-encodes a leaf's content. The line end before a
// delimiter belongs to the delimiter (RFC 2046 §5.1.1), so each line end
// is held back until the next line shows it is content.
type contentWriter struct {
	out     io.Writer
	enc     io.WriteCloser
	pending bool
	b64     bool
}

func newContentWriter(out io.Writer, b64 bool) *contentWriter {
	c := &contentWriter{out: out, b64: b64}
	if b64 {
		c.enc = &base64Lines{out: out}
	} else {
		c.enc = quotedprintable.NewWriter(out)
	}
	return c
}

// piece writes a line's text; eol says the line ended.
func (c *contentWriter) piece(text []byte, eol bool) {
	if c.pending {
		c.enc.Write(crlf)
		c.pending = false
	}
	c.enc.Write(text)
	c.pending = eol
}

// end finishes the encoding. At the end of the message a held line end is
// content; before a delimiter it is written after the encoding.
func (c *contentWriter) end(eof bool) {
	if eof && c.pending {
		c.enc.Write(crlf)
		c.pending = false
	}
	c.enc.Close()
	if c.pending || eof && c.b64 {
		c.out.Write(crlf)
	}
}

// base64Lines encodes to base64 in lines of 76 columns, with CRLF
// between lines (the last line's end is the caller's).
type base64Lines struct {
	out  io.Writer
	in   [57]byte
	n    int
	line [76]byte
	any  bool
}

func (b *base64Lines) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		k := copy(b.in[b.n:], p)
		b.n += k
		p = p[k:]
		if b.n == len(b.in) {
			b.emit()
		}
	}
	return total, nil
}

func (b *base64Lines) emit() {
	if b.any {
		b.out.Write(crlf)
	}
	n := base64.StdEncoding.EncodedLen(b.n)
	base64.StdEncoding.Encode(b.line[:n], b.in[:b.n])
	b.out.Write(b.line[:n])
	b.n, b.any = 0, true
}

func (b *base64Lines) Close() error {
	if b.n > 0 {
		b.emit()
	}
	return nil
}
