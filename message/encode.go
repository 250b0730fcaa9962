package message

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Header lines are folded at foldWidth columns (RFC 5322 §2.1.1 "SHOULD");
// an encoded word may be at most maxWordLen long (RFC 2047 §2).
const (
	foldWidth  = 78
	maxWordLen = 75
	maxLineLen = 998
	// wordOverhead is len("=?utf-8?b?") + len("?="): what every encoded
	// word costs before it carries a byte.
	wordOverhead = 12
	// minFirstWord is the room a line must have left for an encoded word to
	// start on it; with less, the word starts on a new line instead.
	minFirstWord = wordOverhead + 12
)

var (
	errCRLF        = errors.New("contains CR or LF")
	errNUL         = errors.New("contains a NUL byte")
	errInvalidUTF8 = errors.New("is not valid UTF-8")
	errTooLong     = errors.New("makes a header line longer than 998 octets")
)

// checkHeaderValue rejects what must never reach a header: line breaks
// (header injection), NUL, and bytes that are not UTF-8 (we declare utf-8
// in every encoded word).
func checkHeaderValue(s string) error {
	if strings.ContainsAny(s, "\r\n") {
		return errCRLF
	}
	if strings.IndexByte(s, 0) >= 0 {
		return errNUL
	}
	if !utf8.ValidString(s) {
		return errInvalidUTF8
	}
	return nil
}

// folder builds one header field, breaking lines only at the points its
// caller marks (between tokens), so that what a break splits is always
// whitespace that unfolding restores.
type folder struct {
	b     strings.Builder
	col   int  // columns used on the current line
	limit int  // 0: never fold (used by Address.String)
	glue  bool // the next token must stay on this line (after a run of spaces)
}

func newFolder(name string, limit int) *folder {
	f := &folder{limit: limit}
	if name != "" {
		f.b.WriteString(name)
		f.b.WriteByte(':')
		f.col = len(name) + 1
	}
	return f
}

// token writes tok preceded by one space, moving to a new line first when
// tok would overflow the current one. A token that is longer than a line
// is written whole: breaking inside it would change its meaning.
func (f *folder) token(tok string) {
	glue := f.glue
	f.glue = false
	if f.limit > 0 && f.col > 1 && !glue && f.col+1+len(tok) > f.limit {
		f.b.WriteString("\r\n")
		f.col = 0
	} else if f.b.Len() == 0 {
		f.b.WriteString(tok)
		f.col = len(tok)
		return
	}
	f.b.WriteByte(' ')
	f.b.WriteString(tok)
	f.col += 1 + len(tok)
}

// room is how many columns an encoded word may take on the current line.
func (f *folder) room() int {
	if f.limit == 0 {
		return maxWordLen
	}
	return min(maxWordLen, f.limit-f.col-1)
}

// encoded writes s as a run of RFC 2047 encoded words. Adjacent encoded
// words decode with the whitespace between them dropped, so s may be cut
// into as many words as the lines need; cuts fall between runes so that no
// word carries half a UTF-8 sequence (some decoders reject such words).
func (f *folder) encoded(s string) {
	q := preferQ(s)
	for first := true; first || s != ""; first = false {
		budget := f.room()
		if budget < minFirstWord {
			budget = maxWordLen
			if f.limit > 0 {
				budget = min(maxWordLen, f.limit-2)
			}
			if f.col > 1 {
				f.b.WriteString("\r\n")
				f.col = 0
			}
		}
		n := fitRunes(s, budget-wordOverhead, q)
		f.token(encodeWord(s[:n], q))
		s = s[n:]
	}
}

// String returns the field as built so far, without a line ending.
func (f *folder) String() string { return f.b.String() }

// preferQ picks Q encoding when most of s is ASCII: it stays readable and
// is shorter than base64 for such text.
func preferQ(s string) bool {
	special := 0
	for i := 0; i < len(s); i++ {
		if !qSafe(s[i]) && s[i] != ' ' {
			special++
		}
	}
	return special*4 < len(s)
}

// qSafe reports bytes that Q encoding may carry literally in any header
// position, including phrases (RFC 2047 §5 (3)).
func qSafe(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '!' || c == '*' || c == '+' || c == '-' || c == '/'
}

// fitRunes returns how many bytes of whole runes from the start of s fit
// into payload columns of encoded text; at least one rune, so progress is
// always made.
func fitRunes(s string, payload int, q bool) int {
	n, width := 0, 0
	for n < len(s) {
		_, size := utf8.DecodeRuneInString(s[n:])
		w := 0
		if q {
			for i := n; i < n+size; i++ {
				w += qWidth(s[i])
			}
			w += width
		} else {
			w = (n + size + 2) / 3 * 4
		}
		if w > payload && n > 0 {
			break
		}
		n += size
		width = w
	}
	return n
}

func qWidth(c byte) int {
	if qSafe(c) || c == ' ' {
		return 1
	}
	return 3
}

const upperHex = "0123456789ABCDEF"

func encodeWord(s string, q bool) string {
	var b strings.Builder
	if !q {
		b.WriteString("=?utf-8?b?")
		b.WriteString(b64.EncodeToString([]byte(s)))
		b.WriteString("?=")
		return b.String()
	}
	b.WriteString("=?utf-8?q?")
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case qSafe(c):
			b.WriteByte(c)
		case c == ' ':
			b.WriteByte('_')
		default:
			b.WriteByte('=')
			b.WriteByte(upperHex[c>>4])
			b.WriteByte(upperHex[c&15])
		}
	}
	b.WriteString("?=")
	return b.String()
}

// plainText reports whether s can go into an unstructured header as is:
// printable ASCII words separated by single spaces, none of them looking
// like an encoded word and none too long to fit a line. Anything else
// (leading, trailing or repeated spaces that unfolding would eat, tabs,
// non-ASCII) is written as encoded words, which preserve every byte.
func plainText(s string, maxWord int) bool {
	if s == "" || strings.Contains(s, "=?") {
		return s == ""
	}
	for _, w := range strings.Split(s, " ") {
		if w == "" || len(w) > maxWord {
			return false
		}
		for i := 0; i < len(w); i++ {
			if w[i] < 0x21 || w[i] > 0x7e {
				return false
			}
		}
	}
	return true
}

// text writes an unstructured value (Subject, custom headers): as plain
// words when that is lossless, otherwise as encoded words.
func (f *folder) text(s string) {
	if plainText(s, foldWidth-2) {
		for _, w := range strings.Split(s, " ") {
			f.token(w)
		}
		return
	}
	if s != "" {
		f.encoded(s)
	}
}

// encodeHeader renders "Name: value" for an unstructured field, folded,
// with CRLF. It refuses values that would inject lines or are not UTF-8.
func encodeHeader(name, value string) (string, error) {
	if err := checkHeaderValue(value); err != nil {
		return "", err
	}
	f := newFolder(name, foldWidth)
	f.text(value)
	return f.String() + "\r\n", nil
}

// rawHeader renders a custom ASCII value the way its author wrote it:
// structured fields (List-Unsubscribe, DKIM-like tokens) must not be turned
// into encoded words, so it is only folded at single spaces. A run of
// spaces is never a fold point (parsers such as net/mail collapse the
// white space around a fold), so words joined by runs stay on one line;
// when that line would pass 998 octets (RFC 5322 §2.1.1) the value is
// refused with errTooLong rather than written too long or altered.
func rawHeader(name, value string) (string, error) {
	f := newFolder(name, foldWidth)
	if value == "" {
		return f.String() + "\r\n", nil
	}
	for _, w := range strings.Split(value, " ") {
		if len(name)+2+len(w) > maxLineLen {
			return "", errTooLong
		}
		if w == "" {
			// Keep runs of spaces verbatim: a fold inside one would be
			// collapsed to a single space by unfolding.
			f.b.WriteByte(' ')
			f.col++
			f.glue = true
		} else {
			f.token(w)
		}
		if f.col > maxLineLen {
			return "", errTooLong
		}
	}
	return f.String() + "\r\n", nil
}

// isASCIIPrintable reports whether s holds only printable ASCII, space and
// tab: what rawHeader may pass through unencoded.
func isASCIIPrintable(s string) bool {
	for i := 0; i < len(s); i++ {
		if (s[i] < 0x20 && s[i] != '\t') || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// attrChar reports bytes RFC 2231 lets stand for themselves in an
// extended parameter value (RFC 2045 token chars minus * ' %).
func attrChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		strings.IndexByte("!#$&+-.^_`|~", c) >= 0
}

// filenameParams returns the parameter tokens ("; " separated by the
// caller) that carry filename under param: a plain quoted value when it is
// short printable ASCII, otherwise RFC 2231 continuations of
// percent-encoded UTF-8, cut between runes.
func filenameParams(param, filename string) []string {
	if len(filename) <= 60 && isASCIIPrintable(filename) && !strings.Contains(filename, "\t") {
		return []string{param + "=" + quoteString(filename)}
	}
	var toks []string
	var seg strings.Builder
	prefix := func(i int) string {
		if i == 0 {
			return fmt.Sprintf("%s*0*=utf-8''", param)
		}
		return fmt.Sprintf("%s*%d*=", param, i)
	}
	for s := filename; s != ""; {
		_, size := utf8.DecodeRuneInString(s)
		enc := pctEncode(s[:size])
		if seg.Len() > 0 && len(prefix(len(toks)))+seg.Len()+len(enc) > foldWidth-3 {
			toks = append(toks, prefix(len(toks))+seg.String())
			seg.Reset()
		}
		seg.WriteString(enc)
		s = s[size:]
	}
	return append(toks, prefix(len(toks))+seg.String())
}

func pctEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if attrChar(s[i]) {
			b.WriteByte(s[i])
		} else {
			b.WriteByte('%')
			b.WriteByte(upperHex[s[i]>>4])
			b.WriteByte(upperHex[s[i]&15])
		}
	}
	return b.String()
}

// quoteString renders s as an RFC 5322 quoted-string.
func quoteString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}
