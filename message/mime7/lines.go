package mime7

import (
	"bufio"
	"bytes"
	"io"
	"sync"
)

// line is one line of input, or a piece of a line longer than the buffer.
type line struct {
	text  []byte // without its ending; valid until the next read
	eol   []byte // "\r\n", "\n" or "\r"; nil for a piece that goes on, or a last line without one
	first bool   // text starts a line
}

// lineReader cuts its input at every line ending (CRLF, bare LF, bare
// CR), with a fixed buffer: a line longer than it comes in pieces.
type lineReader struct {
	br      *bufio.Reader
	consume int  // bytes of the last line still to discard
	mid     bool // the last piece did not end its line
	eof     bool
	err     error // a read error other than io.EOF
}

const lineBuf = 32 << 10

// bufPool recycles the line readers' buffers: one per message would be
// most of what a small message costs.
var bufPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, lineBuf) }}

func newLineReader(r io.Reader) *lineReader {
	br := bufPool.Get().(*bufio.Reader)
	br.Reset(r)
	return &lineReader{br: br}
}

// release returns the buffer; the reader must not be used after.
func (lr *lineReader) release() {
	if lr.br != nil {
		lr.br.Reset(nil)
		bufPool.Put(lr.br)
		lr.br = nil
	}
}

// next returns the next line or piece; io.EOF after the last one.
func (lr *lineReader) next() (line, error) {
	lr.br.Discard(lr.consume)
	lr.consume = 0
	l := line{first: !lr.mid}
	for {
		buf, _ := lr.br.Peek(lr.br.Buffered())
		i := bytes.IndexAny(buf, "\r\n")
		if i >= 0 && buf[i] == '\r' && i == len(buf)-1 && !lr.eof {
			// Is the CR followed by LF? A fill may move the buffered bytes,
			// so they are looked at again either way.
			lr.fill(len(buf))
			continue
		}
		switch {
		case i >= 0:
			n := 1
			if buf[i] == '\r' && i+1 < len(buf) && buf[i+1] == '\n' {
				n = 2
			}
			l.text, l.eol = buf[:i], buf[i:i+n]
			lr.consume, lr.mid = i+n, false
			return l, nil
		case len(buf) == lr.br.Size() || len(buf) > 0 && lr.eof:
			l.text = buf
			lr.consume, lr.mid = len(buf), !lr.eof
			return l, nil
		case lr.eof:
			if lr.err != nil {
				return line{}, lr.err
			}
			return line{}, io.EOF
		}
		lr.fill(len(buf))
	}
}

// fill reads beyond the n bytes buffered, noting the end of the input.
func (lr *lineReader) fill(n int) {
	if _, err := lr.br.Peek(n + 1); err != nil {
		lr.eof = true
		if err != io.EOF && err != bufio.ErrBufferFull {
			lr.err = err
		}
	}
}
