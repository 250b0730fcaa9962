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

// Words appends the normalised words of s to dst: split at every
// character that is not a letter, number or mark, lower-cased, with
// accents removed ("Café" → "cafe"); words longer than MaxWord are
// dropped.
func Words(dst []string, s string) []string {
	for len(s) > 0 {
		start := strings.IndexFunc(s, wordRune)
		if start < 0 {
			break
		}
		s = s[start:]
		end := strings.IndexFunc(s, func(r rune) bool { return !wordRune(r) })
		if end < 0 {
			end = len(s)
		}
		if w := normalize(s[:end]); w != "" && len(w) <= MaxWord {
			dst = append(dst, w)
		}
		s = s[end:]
	}
	return dst
}

// stripMarks takes accents off: decomposed, its nonspacing marks removed,
// composed again (so that Hangul and the like come back whole).
var stripMarks = transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)

// normalize lower-cases one word and removes its accents; ASCII words,
// the common case, take a fast path.
func normalize(w string) string {
	ascii := true
	for i := 0; i < len(w); i++ {
		if w[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToLower(w)
	}
	out, _, err := transform.String(stripMarks, strings.ToLower(w))
	if err != nil {
		return strings.ToLower(w)
	}
	return out
}

// Join is words as one string, separated by single spaces: the form both
// drivers index.
func Join(words []string) string { return strings.Join(words, " ") }

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
