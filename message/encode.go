package message

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Header lines are folded at foldWidth columns (RFC 5322 §2.1.1 "SHOULD");
// a line that holds an encoded word may be at most ewLineWidth long and an
// encoded word at most maxWordLen (RFC 2047 §2).
const (
	foldWidth   = 78
	ewLineWidth = 76
	maxWordLen  = 75
	maxLineLen  = 998
	// wordOverhead is len("=?utf-8?b?") + len("?="): what every encoded
	// word costs before it carries a byte.
	wordOverhead = 12
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
// whitespace that unfolding restores. It never breaks before the first
// token: a fold right after the colon gains no room and gives the value a
// leading space.
type folder struct {
	b     strings.Builder
	col   int  // columns used on the current line
	limit int  // 0: never fold (used by Address.String)
	glue  bool // the next token must stay on this line (after a run of spaces)
	fresh bool // no token written yet after the field name
	ew    bool // the current line holds an encoded word
}

func newFolder(name string, limit int) *folder {
	f := &folder{limit: limit}
	if name != "" {
		f.b.WriteString(name)
		f.b.WriteByte(':')
		f.col = len(name) + 1
		f.fresh = true
	}
	return f
}

// width is the longest the current line may grow once it holds a token
// of the given kind: 76 columns where there is an encoded word.
func (f *folder) width(ew bool) int {
	if ew || f.ew {
		return min(f.limit, ewLineWidth)
	}
	return f.limit
}

// canFold reports whether a line break may come before the next token.
func (f *folder) canFold() bool {
	return f.limit > 0 && !f.fresh && !f.glue && f.col > 1
}

// token writes a plain token preceded by one space, moving to a new line
// first when tok would overflow the current one. A token that is longer
// than a line is written whole: breaking inside it would change its
// meaning.
func (f *folder) token(tok string) { f.put(tok, false) }

func (f *folder) put(tok string, ew bool) {
	if f.canFold() && f.col+1+len(tok) > f.width(ew) {
		f.newLine()
	}
	f.glue, f.fresh = false, false
	if f.b.Len() == 0 {
		f.b.WriteString(tok)
		f.col, f.ew = len(tok), ew
		return
	}
	f.b.WriteByte(' ')
	f.b.WriteString(tok)
	f.col += 1 + len(tok)
	f.ew = f.ew || ew
}

func (f *folder) newLine() {
	f.b.WriteString("\r\n")
	f.col, f.ew = 0, false
}

// payload is how many columns of encoded text a word may carry if it is
// written on the current line (after a space).
func (f *folder) payload() int {
	if f.limit == 0 {
		return maxWordLen - wordOverhead
	}
	return min(maxWordLen, ewLineWidth-f.col-1) - wordOverhead
}

// encoded writes s as a run of RFC 2047 encoded words. Adjacent encoded
// words decode with the whitespace between them dropped, so s may be cut
// into as many words as the lines need. The cuts fall after a space (a
// word's space travels inside the encoded word before the cut) wherever
// a word fits, moving to a new line rather than cutting a word; a word too
// long for one encoded word is cut between user-perceived characters
// (clusterLen), and only a cluster too long for a whole encoded word is
// cut between runes. No encoded word ever holds half a UTF-8 sequence.
// The first word always shares the field name's line, since a fold right
// after the colon puts a space into the value for decoders such as
// Python's email: when what the name leaves of that line cannot hold the
// first character whole, the word holds part of it (whole runes), and
// after a name of more than 57 columns it holds one rune and the line
// passes 76 columns.
func (f *folder) encoded(s string) {
	q := preferQ(s)
	for first := true; first || s != ""; first = false {
		n := fitWords(s, f.payload(), q)
		if n == 0 && f.canFold() {
			f.newLine()
			n = fitWords(s, f.payload(), q)
		}
		if n == 0 {
			n = fitClusters(s, f.payload(), q)
		}
		f.put(encodeWord(s[:n], q), true)
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

// encodedWidth is how many columns s takes as the text of an encoded word.
func encodedWidth(s string, q bool) int {
	if !q {
		return (len(s) + 2) / 3 * 4
	}
	w := 0
	for i := 0; i < len(s); i++ {
		w += qWidth(s[i])
	}
	return w
}

// fitWords returns the length of the longest prefix of s that ends at a
// space or tab, before or after it (or at the end of s), and fits payload
// columns of encoded text; 0 when not even the first word fits.
func fitWords(s string, payload int, q bool) int {
	best, w := 0, 0
	for i := 0; i < len(s); i++ {
		if i > 0 && (s[i] == ' ' || s[i] == '\t') {
			best = i
		}
		if q {
			w += qWidth(s[i])
		} else {
			w = (i + 1 + 2) / 3 * 4
		}
		if w > payload {
			break
		}
		if s[i] == ' ' || s[i] == '\t' || i == len(s)-1 {
			best = i + 1
		}
	}
	return best
}

// fitClusters returns the length of the longest prefix of s made of whole
// user-perceived characters that fits payload columns of encoded text.
// When not even the first character fits (one wider than a whole encoded
// word, or one too wide for what the field name leaves of the first line,
// which may not be folded) it returns as many whole runes of it as fit,
// at least one, so progress is always made.
func fitClusters(s string, payload int, q bool) int {
	n := 0
	for n < len(s) {
		c := clusterLen(s[n:])
		if encodedWidth(s[:n+c], q) > payload {
			break
		}
		n += c
	}
	if n > 0 {
		return n
	}
	return fitRunes(s, payload, q)
}

// fitRunes returns how many bytes of whole runes from the start of s fit
// into payload columns of encoded text; at least one rune.
func fitRunes(s string, payload int, q bool) int {
	n := 0
	for n < len(s) {
		_, size := utf8.DecodeRuneInString(s[n:])
		if n > 0 && encodedWidth(s[:n+size], q) > payload {
			break
		}
		n += size
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

// paramTokens returns the parameters that carry value under param, each
// as the words the header may fold between (the caller joins parameters
// with "; "): a plain quoted value when it is short printable ASCII;
// RFC 2231 continuations of percent-encoded UTF-8, cut between
// characters, otherwise. A value that holds "=?" goes as RFC 2047 encoded
// words inside the quoted string instead: decoders such as go-message and
// Python's email decode encoded words in parameter values (go-message even
// after RFC 2231 decoding), so a name that merely looks like an encoded
// word must be written as one that decodes to it.
func paramTokens(param, value string) [][]string {
	if strings.Contains(value, "=?") {
		return [][]string{encodedParam(param, value)}
	}
	if len(value) <= 60 && isASCIIPrintable(value) && !strings.Contains(value, "\t") {
		return [][]string{{param + "=" + quoteString(value)}}
	}
	var toks [][]string
	var seg strings.Builder
	prefix := func(i int) string {
		if i == 0 {
			return fmt.Sprintf("%s*0*=utf-8''", param)
		}
		return fmt.Sprintf("%s*%d*=", param, i)
	}
	pre := prefix(0)
	for s := value; s != ""; {
		size := clusterLen(s)
		enc := pctEncode(s[:size])
		if seg.Len() > 0 && len(pre)+seg.Len()+len(enc) > foldWidth-3 {
			toks = append(toks, []string{pre + seg.String()})
			seg.Reset()
			pre = prefix(len(toks))
		}
		seg.WriteString(enc)
		s = s[size:]
	}
	return append(toks, []string{pre + seg.String()})
}

// encodedParam renders param="=?…?= =?…?=": RFC 2047 words in a quoted
// string, the form old clients read in name= and the only one that
// decodes to itself everywhere for a value holding "=?". The words are
// returned apart, for the header to fold between them; each is sized so
// that its line stays within 76 columns.
func encodedParam(param, value string) []string {
	q := preferQ(value)
	var words []string
	for s := value; s != ""; {
		// The first line also carries ` param="`, the last `";`.
		payload := ewLineWidth - wordOverhead - 3
		if len(words) == 0 {
			payload -= len(param) + 2
		}
		n := fitWords(s, payload, q)
		if n == 0 {
			n = fitClusters(s, payload, q)
		}
		words = append(words, encodeWord(s[:n], q))
		s = s[n:]
	}
	words[0] = param + `="` + words[0]
	words[len(words)-1] += `"`
	return words
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
