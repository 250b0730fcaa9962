package mime7

import (
	"bytes"
	"io"
	"runtime"
)

// state is where in the MIME structure the next input line falls.
type state int

const (
	stHeader   state = iota // an entity's header block
	stBody                  // a leaf's body
	stPreamble              // a multipart's text before its first part
	stEpilogue              // a multipart's text after its close delimiter
)

// bodyMode is what is done with a leaf's body lines.
type bodyMode int

const (
	bodyRaw    bodyMode = iota // passed on as it is (Check)
	bodyHold                   // held until it is known whether it must be re-encoded
	bodyEncode                 // re-encoded (contentWriter)
	bodyQP                     // kept in quoted-printable, lines mended where needed
	bodyB64                    // kept in base64, lines mended where needed
	bodyOpaque                 // no encoding may be applied: only checked
)

// frame is an enclosing multipart.
type frame struct {
	boundary []byte
	digest   bool // its parts default to message/rfc822 (RFC 2046 §5.1.5)
}

// header is what an entity's header block said, and where its held part
// lies in the hold.
type header struct {
	top         bool // a message's own header: MIME-Version belongs here
	digestKid   bool
	ctype, cte  []byte // the fields' values, unfolded (bounded)
	field       int    // the field being read: 0 other, 1 Content-Type, 2 Content-Transfer-Encoding
	mimeVersion bool
	holding     bool       // lines go to the hold, from the first Content-Transfer-Encoding on
	skip        [][2]int64 // the held Content-Transfer-Encoding fields
	inSkip      bool
	hdrEnd      int64 // end of the held header lines
	bodyStart   int64 // start of the held body
}

// maxCapture bounds the Content-Type and Content-Transfer-Encoding values
// kept for parsing.
const maxCapture = 8 << 10

// engine is the streaming MIME walker behind Downgrade, LimitLines and
// Check. Read pulls it forward one step at a time, each producing a
// bounded amount of output.
type engine struct {
	lr        *lineReader
	mode      mode
	out       bytes.Buffer
	err       error
	done      bool
	firstDone bool // the message's own header block has been read

	stack []frame
	st    state
	h     header
	body  bodyMode
	// The current body line: its length so far and whether it is mended.
	lineLen int
	mend    bool
	qpCarry []byte // an "=" or "=X" cut off at the end of a piece
	col     int    // columns on the current output line of a mended part
	// forced: the leaf must be re-encoded (it is labelled 8bit), once a
	// sample of it is held to choose the encoding.
	forced      bool
	high, total int64 // 8-bit and control bytes, and all bytes, held of the body

	hold *hold
	enc  *contentWriter
	// A replay of held bytes in progress: raw is copied out as it is, then
	// lines are read back as body lines. queue runs after the replay.
	raw       io.Reader
	lines     *lineReader
	replayEnd int64 // the hold's size when the replay began
	queue     []func()
}

func newEngine(r io.Reader, m mode) *engine {
	e := &engine{lr: newLineReader(r), mode: m, hold: &hold{}}
	e.h.top = true
	// A reader dropped before its end still releases its temporary file.
	runtime.AddCleanup(e, func(h *hold) { h.close() }, e.hold)
	return e
}

// Read yields the transformed message.
func (e *engine) Read(p []byte) (int, error) {
	for e.out.Len() == 0 && e.err == nil && !e.done {
		e.step()
	}
	if e.out.Len() > 0 {
		return e.out.Read(p)
	}
	e.close()
	if e.err != nil {
		return 0, e.err
	}
	return 0, io.EOF
}

// close releases the buffers and the temporary file; the engine reads no
// more.
func (e *engine) close() {
	e.hold.close()
	e.lr.release()
	if e.lines != nil {
		e.lines.release()
		e.lines = nil
	}
}

func (e *engine) fail(err error) {
	if e.err == nil {
		e.err = err
	}
}

func (e *engine) failf(reason string) { e.fail(&Error{Reason: reason}) }

// step does one bounded piece of work: a chunk of a replay, a queued
// action, or one input line.
func (e *engine) step() {
	switch {
	case e.raw != nil:
		if _, err := io.CopyN(&e.out, e.raw, lineBuf); err != nil {
			e.raw = nil
			if err != io.EOF {
				e.fail(err)
			}
			e.replayed()
		}
	case e.lines != nil:
		l, err := e.lines.next()
		if err != nil {
			e.lines.release()
			e.lines = nil
			if err != io.EOF {
				e.fail(err)
			}
			e.replayed()
			return
		}
		e.leafLine(l)
	case len(e.queue) > 0:
		f := e.queue[0]
		e.queue = e.queue[1:]
		f()
	default:
		l, err := e.lr.next()
		switch {
		case err == io.EOF:
			e.finish()
		case err != nil:
			e.fail(err)
		case e.st == stHeader:
			e.headerLine(l)
		case e.st == stBody:
			e.inputBodyLine(l)
		default:
			e.outerLine(l)
		}
	}
}

// replay starts passing on held bytes: raw as they are, then lines (if
// not nil) as body lines.
func (e *engine) replay(raw io.Reader, lines *lineReader) {
	e.raw, e.lines, e.replayEnd = raw, lines, e.hold.size
}

// replayed empties the hold once a replay is over, unless something was
// held behind what it replayed (the next entity's header, in the same
// step), whose offsets must stay valid.
func (e *engine) replayed() {
	if e.raw == nil && e.lines == nil && e.hold.size == e.replayEnd {
		e.hold.reset()
	}
}

// later runs f once the replay in progress (if any) is done, so that
// output keeps its order. f writes to e.out and never calls later.
func (e *engine) later(f func()) {
	if e.busy() {
		e.queue = append(e.queue, f)
		return
	}
	f()
}

// busy reports a replay in progress, or actions waiting for its end.
func (e *engine) busy() bool { return e.raw != nil || e.lines != nil || len(e.queue) > 0 }

// emit writes a line as it goes out, after any replay in progress: CRLF
// endings, except for Check, which changes nothing.
func (e *engine) emit(l line) {
	if e.busy() {
		e.later(func() { e.emitNow(l) })
		return
	}
	e.emitNow(l)
}

func (e *engine) emitNow(l line) {
	e.out.Write(l.text)
	e.out.Write(e.eol(l))
}

func (e *engine) eol(l line) []byte {
	if l.eol == nil || e.mode == modeCheck {
		return l.eol
	}
	return crlf
}

// finish handles the end of the input.
func (e *engine) finish() {
	switch e.st {
	case stHeader:
		e.endHeaderEarly()
	case stBody:
		e.endLeaf(true)
	}
	e.later(func() { e.done = true })
}

// boundary reports whether l is a delimiter of an enclosing multipart:
// which one (inner multiparts end with an outer delimiter too) and
// whether it closes it.
func (e *engine) boundary(l line) (int, bool, bool) {
	t := l.text
	if !l.first || len(e.stack) == 0 || len(t) < 3 || t[0] != '-' || t[1] != '-' || len(t) >= lineBuf {
		return 0, false, false
	}
	for i := len(e.stack) - 1; i >= 0; i-- {
		rest, ok := bytes.CutPrefix(t[2:], e.stack[i].boundary)
		if !ok {
			continue
		}
		closing := bytes.HasPrefix(rest, []byte("--"))
		if closing {
			rest = rest[2:]
		}
		if len(bytes.TrimLeft(rest, " \t")) == 0 {
			return i, closing, true
		}
	}
	return 0, false, false
}

// delimiter handles a boundary line of frame i.
func (e *engine) delimiter(l line, i int, closing bool) {
	e.emit(l)
	if closing {
		e.stack = e.stack[:i]
		e.st = stEpilogue
		return
	}
	e.stack = e.stack[:i+1]
	e.st = stHeader
	e.h = header{digestKid: e.stack[i].digest}
}

// outerLine handles a line of a preamble or epilogue: text that no MIME
// reader shows and no encoding may be applied to.
func (e *engine) outerLine(l line) {
	if i, closing, ok := e.boundary(l); ok {
		e.delimiter(l, i, closing)
		return
	}
	e.trackLine(l)
	switch {
	case e.lineLen > maxLine:
		e.failf("a multipart's preamble or epilogue has a line longer than 998 octets, and no encoding may be applied to it (RFC 2046 §5.1.1)")
	case e.mode == mode7bit && eightBit(l.text) || e.mode != modeCheck && hasNUL(l.text):
		e.failf("a multipart's preamble or epilogue holds 8-bit text or NUL, and no encoding may be applied to it (RFC 2046 §5.1.1)")
	default:
		e.emit(l)
	}
}

// trackLine keeps the length of the current line across its pieces.
func (e *engine) trackLine(l line) {
	if l.first {
		e.lineLen = 0
	}
	e.lineLen += len(l.text)
}
