package smtp

import (
	"bufio"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Default bounds applied to server replies so that a hostile or broken
// server cannot make the client use unbounded memory.
const (
	DefaultMaxLineLength = 2048 // octets per reply line, CRLF included
	DefaultMaxReplyLines = 100  // lines in one multi-line reply
)

// Errors describing replies that break the protocol. They are wrapped in a
// *ConnError, since the connection cannot be trusted after them.
var (
	ErrMalformedReply = errors.New("malformed reply")
	ErrReplyTooLong   = errors.New("reply line too long")
	ErrTooManyLines   = errors.New("reply has too many lines")
)

// EnhancedCode is an RFC 3463 enhanced status code such as 5.1.1.
// The zero value means the server sent none.
type EnhancedCode [3]int

// IsZero reports whether no enhanced code was given.
func (e EnhancedCode) IsZero() bool { return e == EnhancedCode{} }

// String formats the code as "class.subject.detail", or "" when zero.
func (e EnhancedCode) String() string {
	if e.IsZero() {
		return ""
	}
	return fmt.Sprintf("%d.%d.%d", e[0], e[1], e[2])
}

// Reply is one complete (possibly multi-line) server reply.
type Reply struct {
	Code         int          // three-digit reply code
	EnhancedCode EnhancedCode // RFC 3463 code from the first line, if any
	Lines        []string     // text of each line, without code and enhanced code

	one [1]string // room for the usual one-line reply, saving an allocation
}

// Message returns the reply text, lines joined by a space.
func (r *Reply) Message() string { return strings.Join(r.Lines, " ") }

// Positive reports whether the reply is a 2xx or 3xx reply.
func (r *Reply) Positive() bool { return r.Code >= 200 && r.Code < 400 }

// String formats the reply like "250 2.0.0 OK queued".
func (r *Reply) String() string {
	s := strconv.Itoa(r.Code)
	if !r.EnhancedCode.IsZero() {
		s += " " + r.EnhancedCode.String()
	}
	if m := r.Message(); m != "" {
		s += " " + m
	}
	return s
}

// readLine reads one line of at most max octets and returns it without its
// line ending.
func readLine(r *bufio.Reader, max int) (string, error) {
	if frag, err := r.ReadSlice('\n'); err == nil && len(frag) <= max {
		return string(trimEOL(frag)), nil // the usual case: the line is in the buffer
	} else if err != bufio.ErrBufferFull {
		if err == nil {
			err = ErrReplyTooLong
		}
		return "", err
	} else if len(frag) > max {
		return "", ErrReplyTooLong
	} else {
		return readLongLine(r, max, append([]byte(nil), frag...))
	}
}

// trimEOL drops a trailing LF and then a CR.
func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b
}

// readLongLine goes on with a line longer than the reader's buffer.
func readLongLine(r *bufio.Reader, max int, buf []byte) (string, error) {
	for {
		frag, err := r.ReadSlice('\n')
		if len(buf)+len(frag) > max {
			return "", ErrReplyTooLong
		}
		buf = append(buf, frag...)
		if err == nil {
			break
		}
		if err != bufio.ErrBufferFull {
			return "", err
		}
	}
	return string(trimEOL(buf)), nil
}

// readReply reads one reply, enforcing maxLine octets per line and maxLines
// lines. trace, when not nil, sees every received line.
func readReply(r *bufio.Reader, maxLine, maxLines int, trace func(string)) (*Reply, error) {
	rep := &Reply{}
	rep.Lines = rep.one[:0]
	for n := 0; ; n++ {
		if n >= maxLines {
			return nil, ErrTooManyLines
		}
		line, err := readLine(r, maxLine)
		if err != nil {
			return nil, err
		}
		if trace != nil {
			trace(line)
		}
		code, more, text, err := parseReplyLine(line)
		if err != nil {
			return nil, err
		}
		if n > 0 && code != rep.Code {
			return nil, fmt.Errorf("%w: code changed within reply: %q", ErrMalformedReply, clip(line))
		}
		rep.Code = code
		rep.Lines = append(rep.Lines, text)
		if !more {
			break
		}
	}
	rep.EnhancedCode, rep.Lines[0] = parseEnhanced(rep.Code, rep.Lines[0])
	return rep, nil
}

// parseReplyLine splits "250-text" into its code, continuation flag and text.
func parseReplyLine(line string) (code int, more bool, text string, err error) {
	if len(line) < 3 || line[0] < '2' || line[0] > '5' ||
		!isDigit(line[1]) || !isDigit(line[2]) {
		return 0, false, "", fmt.Errorf("%w: %q", ErrMalformedReply, clip(line))
	}
	code = int(line[0]-'0')*100 + int(line[1]-'0')*10 + int(line[2]-'0')
	if len(line) == 3 {
		return code, false, "", nil
	}
	switch line[3] {
	case ' ':
		return code, false, line[4:], nil
	case '-':
		return code, true, line[4:], nil
	}
	return 0, false, "", fmt.Errorf("%w: %q", ErrMalformedReply, clip(line))
}

// parseEnhanced takes an RFC 3463 code off the front of text when its class
// agrees with the reply code.
func parseEnhanced(code int, text string) (EnhancedCode, string) {
	word, rest, _ := strings.Cut(text, " ")
	var e EnhancedCode
	for i := range e {
		p := word
		if i < 2 {
			var ok bool
			if p, word, ok = strings.Cut(word, "."); !ok {
				return EnhancedCode{}, text
			}
		}
		if len(p) == 0 || len(p) > 3 {
			return EnhancedCode{}, text
		}
		for j := 0; j < len(p); j++ {
			if !isDigit(p[j]) {
				return EnhancedCode{}, text
			}
			e[i] = e[i]*10 + int(p[j]-'0')
		}
	}
	if e[0] != code/100 {
		return EnhancedCode{}, text
	}
	return e, rest
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// clip shortens s for inclusion in an error message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
