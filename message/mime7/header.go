package mime7

import (
	"bytes"
	"io"
	"mime"
	"strings"
)

// headerLine handles a line of an entity's header block. Lines go out as
// they come until the first Content-Transfer-Encoding field; from there on
// they are held, since that field may have to be replaced.
func (e *engine) headerLine(l line) {
	if !l.first || len(l.text) > maxLine {
		e.failf("a header line is longer than 998 octets (RFC 5322 §2.1.1), and header lines cannot be re-encoded")
		return
	}
	if e.mode == mode7bit && eightBit(l.text) {
		e.failf("a header field holds 8-bit text, which only a server that offers SMTPUTF8 may receive (RFC 6531, RFC 6532)")
		return
	}
	if e.mode != modeCheck && hasNUL(l.text) {
		e.failf("a header field holds a NUL byte, which no header may (RFC 5322 §3.2.2)")
		return
	}
	if i, closing, ok := e.boundary(l); ok {
		e.endHeaderEarly()
		e.delimiter(l, i, closing)
		return
	}
	if len(l.text) == 0 {
		e.endHeader(&l)
		return
	}
	if isWSP(l.text[0]) {
		e.capture(l.text)
		e.headerOut(l)
		return
	}
	name, ok := fieldName(l.text)
	if !ok && e.mode == modeCheck {
		// Not a header field: the body starts here, without the empty line.
		e.endHeader(nil)
		e.dispatch(l)
		return
	}
	if !ok {
		// Parsers read such a line differently: net/mail joins it with a
		// folded line after it into a field ("0\r\n :x" is field "0"),
		// others start the body there. Re-encoding what one of them calls
		// body would leave 8-bit bytes in what another calls header, so it
		// is refused. Stored messages have a well-formed header block (the
		// MSA adds the empty line a message without one lacks).
		e.failf("a line of a header block is not a header field (RFC 5322 §2.2), so the entity's structure is ambiguous")
		return
	}
	e.closeSkip()
	e.h.field = 0
	switch strings.ToLower(string(name)) {
	case "content-type": // the first of each field counts, as net/mail and go-message read them
		if e.h.ctype == nil {
			e.h.field, e.h.ctype = 1, []byte{}
		}
	case "content-transfer-encoding":
		if e.h.cte == nil {
			e.h.field, e.h.cte = 2, []byte{}
		}
		if e.mode != modeCheck {
			e.h.holding, e.h.inSkip = true, true
			e.h.skip = append(e.h.skip, [2]int64{e.hold.size, e.hold.size})
		}
	case "mime-version":
		e.h.mimeVersion = true
	}
	e.capture(l.text[bytes.IndexByte(l.text, ':')+1:])
	e.headerOut(l)
}

// dispatch handles a line in whatever state the engine is now in.
func (e *engine) dispatch(l line) {
	switch e.st {
	case stHeader:
		e.headerLine(l)
	case stBody:
		e.inputBodyLine(l)
	default:
		e.outerLine(l)
	}
}

// headerOut passes a header line on, or holds it.
func (e *engine) headerOut(l line) {
	if !e.h.holding {
		e.emit(l)
		return
	}
	e.holdLine(l)
	if e.h.inSkip {
		e.h.skip[len(e.h.skip)-1][1] = e.hold.size
	}
}

func (e *engine) holdLine(l line) {
	if _, err := e.hold.Write(l.text); err == nil && l.eol != nil {
		_, err = e.hold.Write(crlf)
	}
}

func (e *engine) closeSkip() { e.h.inSkip = false }

// capture keeps (part of) the value of a field that decides the
// structure, unfolded.
func (e *engine) capture(v []byte) {
	p := map[int]*[]byte{1: &e.h.ctype, 2: &e.h.cte}[e.h.field]
	if p != nil && len(*p)+len(v) <= maxCapture {
		*p = append(*p, v...)
	}
}

// fieldName returns the name of a header field line. Any line with a
// colon counts, as net/mail (which is lax about names) reads it: what a
// parser may read as header must be treated as header, or 8-bit bytes
// would be let through there.
func fieldName(t []byte) ([]byte, bool) {
	i := bytes.IndexByte(t, ':')
	if i < 0 {
		return nil, false
	}
	return bytes.TrimRight(t[:i], " \t"), true
}

// kind is what an entity turned out to be, from its header.
type kind int

const (
	kindLeaf      kind = iota // re-encodable content
	kindMultipart             // parts between boundaries
	kindMessage               // message/rfc822: a message inside
	kindOpaque                // no encoding may be applied
)

// classify reads the entity's Content-Type and Content-Transfer-Encoding.
func (e *engine) classify() (k kind, cte string, boundary []byte, digest bool) {
	cte = strings.ToLower(strings.TrimSpace(string(e.h.cte)))
	if cte == "" {
		cte = "7bit"
	}
	ctype := "text/plain"
	if e.h.digestKid {
		ctype = "message/rfc822"
	}
	var params map[string]string
	if len(bytes.TrimSpace(e.h.ctype)) > 0 {
		t, p, err := mime.ParseMediaType(string(e.h.ctype))
		if err == nil && strings.Contains(t, "/") {
			ctype, params = t, p
		} else {
			ctype = "text/plain" // RFC 2045 §5.2: an invalid type is text/plain
		}
	}
	identity := cte == "7bit" || cte == "8bit" || cte == "binary"
	major, _, _ := strings.Cut(ctype, "/")
	switch {
	case major == "multipart" && identity && len(params["boundary"]) > 0 && len(params["boundary"]) <= 200 && len(e.stack) < 64:
		return kindMultipart, cte, []byte(params["boundary"]), ctype == "multipart/digest"
	case ctype == "message/rfc822" && identity:
		return kindMessage, cte, nil, false
	case major == "multipart" || major == "message" && ctype != "message/global":
		// RFC 2045 §6.4: composite types take no encoding.
		return kindOpaque, cte, nil, false
	case identity || cte == "quoted-printable" || cte == "base64":
		return kindLeaf, cte, nil, false
	}
	return kindOpaque, cte, nil, false
}

// endHeader handles the end of a header block: the empty line (blank), or
// the first body line (blank is nil). It decides what the entity is and what becomes of
// its header: passed on (what was held is flushed), rewritten now (a
// composite labelled 8bit or binary, whose content will be 7bit), or held
// with the body (a leaf that may need re-encoding).
func (e *engine) endHeader(blank *line) {
	e.closeSkip()
	e.h.hdrEnd = e.hold.size
	e.firstDone = true
	k, cte, boundary, digest := e.classify()
	relabel := ""
	if k == kindMultipart || k == kindMessage {
		switch {
		case e.mode == mode7bit && cte != "7bit":
			relabel = "7bit"
		case e.mode == modeLines && cte == "binary":
			relabel = "8bit"
		}
	}
	e.body, e.forced, e.high, e.total = bodyModeOf(k, cte, e.mode), false, 0, 0
	e.qpCarry, e.col = e.qpCarry[:0], 0
	switch {
	case relabel != "":
		e.rewriteHeader(relabel, nil)
	case e.body == bodyHold:
		e.h.holding = true
		if blank != nil {
			e.holdLine(*blank)
		}
		e.h.bodyStart = e.hold.size
		e.forced = e.mode == mode7bit && cte != "7bit"
	default:
		e.flushHold()
		if blank != nil {
			e.emit(*blank)
		}
	}
	switch k {
	case kindMultipart:
		e.stack = append(e.stack, frame{boundary: boundary, digest: digest})
		e.st = stPreamble
	case kindMessage:
		e.st, e.h = stHeader, header{top: true}
	default:
		e.st = stBody
	}
}

// bodyModeOf is what becomes of the body of an entity of kind k.
func bodyModeOf(k kind, cte string, m mode) bodyMode {
	switch {
	case k == kindOpaque:
		return bodyOpaque
	case k != kindLeaf || m == modeCheck:
		return bodyRaw
	case cte == "quoted-printable":
		return bodyQP
	case cte == "base64":
		return bodyB64
	}
	return bodyHold
}

// endHeaderEarly handles an entity that ends (at a delimiter, or the end of
// the input) before its header block does: it has no body to re-encode.
func (e *engine) endHeaderEarly() {
	e.firstDone = true
	e.flushHold()
}

// flushHold passes on what is held, unchanged.
func (e *engine) flushHold() {
	if e.hold.size > 0 {
		e.replay(e.hold.section(0, e.hold.size), nil)
	}
	e.h.holding = false
}

// rewriteHeader replays the held header lines without their
// Content-Transfer-Encoding fields, then adds the new one (and
// MIME-Version where a message had none), then the empty line.
// body, if not nil, then reads the held body back as body lines.
func (e *engine) rewriteHeader(cte string, body *lineReader) {
	var rs []io.Reader
	pos := int64(0)
	for _, s := range e.h.skip {
		rs = append(rs, e.hold.section(pos, s[0]))
		pos = s[1]
	}
	rs = append(rs, e.hold.section(pos, e.h.hdrEnd))
	fields := ""
	if e.h.top && !e.h.mimeVersion {
		fields = "MIME-Version: 1.0\r\n"
	}
	fields += "Content-Transfer-Encoding: " + cte + "\r\n\r\n"
	rs = append(rs, strings.NewReader(fields))
	e.replay(io.MultiReader(rs...), body)
	e.h.holding = false
}
