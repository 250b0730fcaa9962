package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth bounds the nesting of a request's JSON.
const maxDepth = 64

// maxKey bounds one object key.
const maxKey = 64 << 10

// scanner reads one JSON text from a stream and checks what encoding/json
// lets pass: invalid UTF-8 (which it would replace with U+FFFD), unpaired
// surrogate escapes (likewise), and a key given twice in one object (of
// which it would keep the last). Each is an error naming the field.
//
// Values a caller wants decoded are copied into capture as they are read,
// without the white space between tokens; the rest is checked and
// dropped, and string contents can be streamed to a writer instead
// (attachment content), so a large value never sits in memory.
type scanner struct {
	r       *bufio.Reader
	off     int64   // bytes consumed, for error positions
	capture *memBuf // where the current value is copied, if anywhere
	depth   int
}

func newScanner(r io.Reader) *scanner {
	return &scanner{r: bufio.NewReaderSize(r, 32<<10)}
}

// syntaxError is malformed JSON at the current position.
type syntaxError struct {
	msg string
	off int64
}

func (e *syntaxError) Error() string { return e.msg }

func (s *scanner) syntax(format string, args ...any) error {
	return &syntaxError{msg: fmt.Sprintf(format, args...), off: s.off}
}

// read consumes one byte, copying it to capture.
func (s *scanner) read() (byte, error) {
	b, err := s.r.ReadByte()
	if err != nil {
		return 0, s.eof(err)
	}
	s.off++
	if s.capture != nil {
		if err := s.capture.WriteByte(b); err != nil {
			return 0, err
		}
	}
	return b, nil
}

// eof turns the end of the body inside a value into io.ErrUnexpectedEOF.
func (s *scanner) eof(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// peek skips white space and returns the next byte without consuming it.
func (s *scanner) peek() (byte, error) {
	for {
		b, err := s.r.ReadByte()
		if err != nil {
			return 0, err
		}
		switch b {
		case ' ', '\t', '\r', '\n':
			s.off++
			continue
		}
		s.r.UnreadByte()
		return b, nil
	}
}

// expect consumes the next non-space byte, which must be want.
func (s *scanner) expect(want byte, context string) error {
	b, err := s.peek()
	if err != nil {
		return s.eof(err)
	}
	s.read()
	if b != want {
		return s.syntax("invalid character %s %s", quoteChar(b), context)
	}
	return nil
}

func quoteChar(b byte) string {
	if b == '\'' {
		return `'\''`
	}
	if b == '"' {
		return `'"'`
	}
	s := strconv.Quote(string(rune(b)))
	return "'" + s[1:len(s)-1] + "'"
}

// value checks one value of any kind at path.
func (s *scanner) value(path string) error {
	b, err := s.peek()
	if err != nil {
		return s.eof(err)
	}
	switch {
	case b == '{':
		return s.object(path, nil)
	case b == '[':
		return s.array(path, nil)
	case b == '"':
		return s.str(path, nil)
	case b == 't':
		return s.literal("true")
	case b == 'f':
		return s.literal("false")
	case b == 'n':
		return s.literal("null")
	case b == '-' || b >= '0' && b <= '9':
		return s.number()
	}
	s.read()
	return s.syntax("invalid character %s looking for beginning of value", quoteChar(b))
}

func (s *scanner) literal(word string) error {
	for i := range len(word) {
		b, err := s.read()
		if err != nil {
			return err
		}
		if b != word[i] {
			return s.syntax("invalid character %s in literal %s (expecting %s)", quoteChar(b), word, quoteChar(word[i]))
		}
	}
	return nil
}

// number checks -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() error {
	next := func() byte {
		if b, err := s.r.Peek(1); err == nil {
			return b[0]
		}
		return 0
	}
	digits := func(what string) error {
		if b := next(); b < '0' || b > '9' {
			c, err := s.read()
			if err != nil {
				return err
			}
			return s.syntax("invalid character %s in %s", quoteChar(c), what)
		}
		for b := next(); b >= '0' && b <= '9'; b = next() {
			s.read()
		}
		return nil
	}
	if next() == '-' {
		s.read()
	}
	if next() == '0' {
		s.read()
	} else if err := digits("numeric literal"); err != nil {
		return err
	}
	if next() == '.' {
		s.read()
		if err := digits("numeric literal"); err != nil {
			return err
		}
	}
	if b := next(); b == 'e' || b == 'E' {
		s.read()
		if b := next(); b == '+' || b == '-' {
			s.read()
		}
		return digits("exponent of numeric literal")
	}
	return nil
}

// member handles one member of an object; handled false leaves the value
// to be checked and dropped.
type member func(key, path string) (handled bool, err error)

// object checks an object; each member's key is checked against the keys
// before it, and its value goes to m or, when m is nil or does not handle
// it, is checked at path.key.
func (s *scanner) object(path string, m member) error {
	if s.depth++; s.depth > maxDepth {
		return badRequest(path, "%s is nested more than %d levels deep", orBody(path), maxDepth)
	}
	defer func() { s.depth-- }()
	s.read() // {
	if b, err := s.peek(); err != nil {
		return s.eof(err)
	} else if b == '}' {
		s.read()
		return nil
	}
	seen := make(map[string]bool)
	for {
		b, err := s.peek()
		if err != nil {
			return s.eof(err)
		}
		if b != '"' {
			s.read()
			return s.syntax("invalid character %s looking for beginning of object key string", quoteChar(b))
		}
		var key bytes.Buffer
		if err := s.str(path, &limitWriter{w: &key, n: maxKey}); err != nil {
			return err
		}
		kp := join(path, key.String())
		if seen[key.String()] {
			return badRequest(kp, "%s is given twice; each key may appear once", kp)
		}
		seen[key.String()] = true
		if err := s.expect(':', "after object key"); err != nil {
			return err
		}
		handled := false
		if m != nil {
			if handled, err = m(key.String(), kp); err != nil {
				return err
			}
		}
		if !handled {
			if err := s.value(kp); err != nil {
				return err
			}
		}
		if b, err = s.peek(); err != nil {
			return s.eof(err)
		}
		s.read()
		switch b {
		case ',':
			continue
		case '}':
			return nil
		}
		return s.syntax("invalid character %s after object key:value pair", quoteChar(b))
	}
}

// array checks an array; each element goes to elem, or is checked at
// path[i] when elem is nil.
func (s *scanner) array(path string, elem func(i int, path string) error) error {
	if s.depth++; s.depth > maxDepth {
		return badRequest(path, "%s is nested more than %d levels deep", orBody(path), maxDepth)
	}
	defer func() { s.depth-- }()
	s.read() // [
	if b, err := s.peek(); err != nil {
		return s.eof(err)
	} else if b == ']' {
		s.read()
		return nil
	}
	for i := 0; ; i++ {
		ep := fmt.Sprintf("%s[%d]", path, i)
		var err error
		if elem != nil {
			err = elem(i, ep)
		} else {
			err = s.value(ep)
		}
		if err != nil {
			return err
		}
		b, err := s.peek()
		if err != nil {
			return s.eof(err)
		}
		s.read()
		switch b {
		case ',':
			continue
		case ']':
			return nil
		}
		return s.syntax("invalid character %s after array element", quoteChar(b))
	}
}

// str checks a string at path and writes its decoded contents to out
// (when not nil) as they are read.
func (s *scanner) str(path string, out io.Writer) error {
	s.read() // "
	for {
		// The fast path: a run of plain ASCII, written in one piece.
		buf, _ := s.r.Peek(s.r.Buffered())
		n := 0
		for n < len(buf) && buf[n] >= 0x20 && buf[n] < 0x80 && buf[n] != '"' && buf[n] != '\\' {
			n++
		}
		if n > 0 {
			if err := s.emit(buf[:n], out); err != nil {
				return err
			}
			continue
		}
		b, err := s.read()
		if err != nil {
			return err
		}
		switch {
		case b == '"':
			return nil
		case b == '\\':
			if err := s.escape(path, out); err != nil {
				return err
			}
		case b < 0x20:
			return s.syntax("invalid character %s in string literal", quoteChar(b))
		case b >= 0x80:
			if err := s.multibyte(path, b, out); err != nil {
				return err
			}
		default:
			if err := write(out, []byte{b}); err != nil {
				return err
			}
		}
	}
}

// emit consumes p, already peeked, copying it to capture and out.
func (s *scanner) emit(p []byte, out io.Writer) error {
	if s.capture != nil {
		if _, err := s.capture.Write(p); err != nil {
			return err
		}
	}
	if err := write(out, p); err != nil {
		return err
	}
	s.off += int64(len(p))
	s.r.Discard(len(p))
	return nil
}

func write(out io.Writer, p []byte) error {
	if out == nil {
		return nil
	}
	_, err := out.Write(p)
	return err
}

// multibyte reads the rest of a UTF-8 sequence that starts with lead.
func (s *scanner) multibyte(path string, lead byte, out io.Writer) error {
	seq := []byte{lead}
	size := 0
	switch {
	case lead&0xe0 == 0xc0:
		size = 2
	case lead&0xf0 == 0xe0:
		size = 3
	case lead&0xf8 == 0xf0:
		size = 4
	}
	for len(seq) < size {
		next, err := s.r.Peek(1)
		if err != nil || next[0]&0xc0 != 0x80 {
			break
		}
		b, _ := s.read()
		seq = append(seq, b)
	}
	if size == 0 || !utf8.Valid(seq) {
		return badRequest(path, "%s is not valid UTF-8 (at byte %d of the body)", orBody(path), s.off)
	}
	return write(out, seq)
}

// escape decodes the escape after a backslash.
func (s *scanner) escape(path string, out io.Writer) error {
	b, err := s.read()
	if err != nil {
		return err
	}
	switch b {
	case '"', '\\', '/':
		return write(out, []byte{b})
	case 'b':
		return write(out, []byte{'\b'})
	case 'f':
		return write(out, []byte{'\f'})
	case 'n':
		return write(out, []byte{'\n'})
	case 'r':
		return write(out, []byte{'\r'})
	case 't':
		return write(out, []byte{'\t'})
	case 'u':
		r, err := s.hex4()
		if err != nil {
			return err
		}
		if utf16.IsSurrogate(r) {
			// Only a high surrogate followed by a low one is a character.
			if r >= 0xdc00 || s.literal(`\u`) != nil {
				return badRequest(path, "%s has an unpaired UTF-16 surrogate escape (at byte %d of the body)", orBody(path), s.off)
			}
			lo, err := s.hex4()
			if err != nil {
				return err
			}
			if r = utf16.DecodeRune(r, lo); r == utf8.RuneError {
				return badRequest(path, "%s has an unpaired UTF-16 surrogate escape (at byte %d of the body)", orBody(path), s.off)
			}
		}
		return write(out, utf8.AppendRune(nil, r))
	}
	return s.syntax("invalid character %s in string escape code", quoteChar(b))
}

func (s *scanner) hex4() (rune, error) {
	var r rune
	for range 4 {
		b, err := s.read()
		if err != nil {
			return 0, err
		}
		var v byte
		switch {
		case b >= '0' && b <= '9':
			v = b - '0'
		case b >= 'a' && b <= 'f':
			v = b - 'a' + 10
		case b >= 'A' && b <= 'F':
			v = b - 'A' + 10
		default:
			return 0, s.syntax("invalid character %s in \\u hexadecimal character escape", quoteChar(b))
		}
		r = r<<4 | rune(v)
	}
	return r, nil
}

// end checks that nothing but white space follows the value.
func (s *scanner) end() error {
	b, err := s.peek()
	if err == io.EOF {
		return nil
	}
	if err != nil {
		return err
	}
	s.read()
	return s.syntax("invalid character %s after top-level value", quoteChar(b))
}

// captureValue checks the value at path and returns it as JSON.
func (s *scanner) captureValue(path string, into *memBuf) error {
	s.capture = into
	defer func() { s.capture = nil }()
	return s.value(path)
}

// join names a member of the object at path.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// limitWriter fails a write past n bytes.
type limitWriter struct {
	w io.Writer
	n int
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if len(p) > l.n {
		return 0, badRequest("", "an object key is longer than %d bytes", maxKey)
	}
	l.n -= len(p)
	return l.w.Write(p)
}

// writeKey writes key as a JSON string.
func writeKey(b *memBuf, key string) error {
	k, _ := json.Marshal(key)
	_, err := b.Write(k)
	return err
}
