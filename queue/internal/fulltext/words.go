// Package fulltext is what the queue's search index knows of text: the
// words it indexes and searches for, normalised the same way for every
// driver, and the reading of a stored message into the text to index (its
// subject, its header's mailboxes with their display names, the text of its
// body and its attachments' names), streaming and within fixed bounds.
//
// Normalising in Go rather than in each database keeps SQLite's FTS5 and
// PostgreSQL's tsvector in agreement: both are handed words that are
// already split, lower-cased and stripped of accents, and a query is split
// by the same function, so a word matches on one driver exactly when it
// matches on the other.
package fulltext

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// MaxWord is the longest word indexed, in bytes: longer runs of letters
// and digits are hashes, tokens or base64, which nobody searches for.
const MaxWord = 64

// wordRune reports whether r belongs to a word: letters, numbers, marks
// (so that combining accents stay inside their word) and private-use
// characters, as SQLite's unicode61 tokenizer with categories
// 'L* N* Co M*' counts them.
func wordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsMark(r) || unicode.Is(unicode.Co, r)
}

// asciiWord marks the ASCII bytes that belong to a word.
var asciiWord = func() (t [utf8.RuneSelf]bool) {
	for c := range t {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
	}
	return t
}()

// AppendWords appends the normalised words of s to dst, each followed by
// one space: split at every character that is not a letter, number or
// mark, lower-cased, with accents removed ("Café" → "cafe"); words longer
// than MaxWord are dropped. ASCII text, the common case, is copied byte by
// byte.
func AppendWords(dst []byte, s string) []byte {
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf && !asciiWord[c] {
			i++
			continue
		}
		if r, n := utf8.DecodeRuneInString(s[i:]); r >= utf8.RuneSelf && !wordRune(r) {
			i += n
			continue
		}
		j, ascii := i, true
		for j < len(s) {
			if c := s[j]; c < utf8.RuneSelf {
				if !asciiWord[c] {
					break
				}
				j++
				continue
			}
			r, n := utf8.DecodeRuneInString(s[j:])
			if !wordRune(r) {
				break
			}
			j, ascii = j+n, false
		}
		dst = appendWord(dst, s[i:j], ascii)
		i = j
	}
	return dst
}

func appendWord(dst []byte, w string, ascii bool) []byte {
	if !ascii {
		w = normalize(w)
		if w == "" {
			return dst
		}
	}
	if len(w) > MaxWord {
		return dst
	}
	for k := 0; k < len(w); k++ {
		c := w[k]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return append(dst, ' ')
}

// Words appends the normalised words of s to dst (see AppendWords).
func Words(dst []string, s string) []string {
	return append(dst, strings.Fields(string(AppendWords(nil, s)))...)
}

// stripMarks takes accents off: decomposed, its nonspacing marks removed,
// composed again (so that Hangul and the like come back whole).
var stripMarks = transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)

// normalize lower-cases a word with letters beyond ASCII and removes its
// accents.
func normalize(w string) string {
	out, _, err := transform.String(stripMarks, strings.ToLower(w))
	if err != nil {
		return strings.ToLower(w)
	}
	return out
}

// Unique returns words without repeats, in first-seen order.
func Unique(words []string) []string {
	seen := make(map[string]struct{}, len(words))
	out := words[:0:0]
	for _, w := range words {
		if _, ok := seen[w]; !ok {
			seen[w] = struct{}{}
			out = append(out, w)
		}
	}
	return out
}
