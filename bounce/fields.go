package bounce

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
)

// Limits on what is read as fields; the report's size limit bounds the
// rest.
const (
	maxLine       = 16 << 10  // one physical line (the bufio size)
	maxBlock      = 256 << 10 // one block of fields
	maxRecipients = 1000
	maxDepth      = 4 // multipart nesting looked into
)

var (
	errLongLine  = errors.New("a line longer than 16 KiB")
	errLongBlock = errors.New("a header block longer than 256 KiB")
)

// field is one header-style field: its lowercase name and its value,
// unfolded and trimmed.
type field struct{ name, value string }

// fields is a block of fields.
type fields []field

// get returns the value of the first field called name ("" if none).
func (fs fields) get(name string) string {
	for _, f := range fs {
		if f.name == name {
			return f.value
		}
	}
	return ""
}

// all returns the values of every field called name.
func (fs fields) all(name string) []string {
	var v []string
	for _, f := range fs {
		if f.name == name {
			v = append(v, f.value)
		}
	}
	return v
}

// readBlock reads fields from br up to an empty line (consumed) or the
// end of input (eof true), keeping those keep accepts (all if keep is
// nil). Lines that are not fields are skipped. An input error is
// returned as it is.
func readBlock(br *bufio.Reader, keep func(string) bool) (fs fields, eof bool, err error) {
	total := 0
	var cur *field
	for {
		line, err := br.ReadSlice('\n')
		switch {
		case err == bufio.ErrBufferFull:
			return fs, false, errLongLine
		case err == io.EOF && len(line) == 0:
			return fs, true, nil
		case err != nil && err != io.EOF:
			return fs, false, err
		}
		if total += len(line); total > maxBlock {
			return fs, false, errLongBlock
		}
		text := bytes.TrimRight(line, "\r\n")
		if len(text) == 0 {
			return fs, err == io.EOF, nil
		}
		if text[0] == ' ' || text[0] == '\t' {
			if cur != nil {
				cur.value = strings.TrimSpace(cur.value + string(text))
			}
		} else if name, value, ok := bytes.Cut(text, []byte(":")); ok && len(name) > 0 {
			n := strings.ToLower(string(bytes.TrimSpace(name)))
			cur = nil
			if keep == nil || keep(n) {
				fs = append(fs, field{n, strings.TrimSpace(string(value))})
				cur = &fs[len(fs)-1]
			}
		} else {
			cur = nil
		}
		if err == io.EOF {
			return fs, true, nil
		}
	}
}

// typed strips the type of a DSN value such as "rfc822; bob@example.net"
// or "dns; mx.example.net", and the angle brackets some MTAs add.
func typed(v string) string {
	if _, rest, ok := strings.Cut(v, ";"); ok {
		v = rest
	}
	v = strings.TrimSpace(v)
	if len(v) > 1 && v[0] == '<' && v[len(v)-1] == '>' {
		v = v[1 : len(v)-1]
	}
	return v
}

// statusCode returns the first status code (class.subject.detail, class
// 2, 4 or 5) in s, or "".
func statusCode(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c == '2' || c == '4' || c == '5') && (i == 0 || !isCodeByte(s[i-1])) {
			if n := codeLen(s[i:]); n > 0 {
				return s[i : i+n]
			}
		}
	}
	return ""
}

// codeLen returns the length of the status code s starts with, or 0: a
// digit, a dot, 1–3 digits, a dot, 1–3 digits.
func codeLen(s string) int {
	if len(s) < 5 || s[1] != '.' {
		return 0
	}
	i := 2
	for part := 0; part < 2; part++ {
		start := i
		for i < len(s) && i-start < 4 && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if n := i - start; n == 0 || n > 3 {
			return 0
		}
		if part == 0 {
			if i >= len(s) || s[i] != '.' {
				return 0
			}
			i++
		}
	}
	// Not the start of something longer, such as an IP address.
	if i < len(s) && (isDigit(s[i]) || s[i] == '.' && i+1 < len(s) && isDigit(s[i+1])) {
		return 0
	}
	return i
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isCodeByte(c byte) bool { return c >= '0' && c <= '9' || c == '.' }
