package message

import (
	"unicode"
	"unicode/utf8"
)

// clusterLen returns the length in bytes of the user-perceived character
// (an approximation of a UAX #29 extended grapheme cluster) that starts s:
// a rune with the combining marks, variation selectors, emoji modifiers,
// tags and zero-width joiner sequences that follow it, a pair of regional
// indicators (a flag), or a Hangul syllable written as jamo. Cutting an
// encoded word only at these boundaries keeps a decoder that shows each
// word on its own (some do) from separating an accent from its letter.
// x/text has no grapheme segmentation; this covers what mail text needs.
// A cluster longer than maxCluster bytes is cut there.
func clusterLen(s string) int {
	if s == "" {
		return 0
	}
	r, n := utf8.DecodeRuneInString(s)
	if r == '\r' && len(s) > 1 && s[1] == '\n' {
		return 2
	}
	prev, flag := r, isRegional(r)
	for n < len(s) && n < maxCluster {
		next, size := utf8.DecodeRuneInString(s[n:])
		switch {
		case extendsCluster(next):
		case prev == zwj && next >= 0x80:
			// A ZWJ sequence (👩‍💻): the joiner binds what follows it.
		case flag && isRegional(next):
			flag = false // a flag is exactly two indicators
		case hangulJoins(prev, next):
		default:
			return n
		}
		prev = next
		n += size
	}
	return n
}

const zwj = 0x200D

// maxCluster bounds the scan for the end of a cluster: the longest real
// ones (emoji ZWJ sequences, stacked diacritics) are far shorter, and a
// run of thousands of combining marks must not make encoding quadratic.
const maxCluster = 128

// extendsCluster reports runes that never start a user-perceived
// character: combining marks (Mn, Me, Mc, which include the variation
// selectors), ZWJ and ZWNJ, emoji skin-tone modifiers and tag characters.
func extendsCluster(r rune) bool {
	switch {
	case r < 0x300:
		return false
	case r == zwj || r == 0x200C:
		return true
	case r >= 0x1F3FB && r <= 0x1F3FF: // skin tones (category Sk)
		return true
	case r >= 0xE0020 && r <= 0xE007F: // tags, as in subdivision flags
		return true
	}
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Mc)
}

func isRegional(r rune) bool { return r >= 0x1F1E6 && r <= 0x1F1FF }

// hangulJoins reports whether next continues a Hangul syllable: a medial
// vowel or final consonant jamo after a leading consonant, vowel or
// precomposed syllable, or a leading consonant after another.
func hangulJoins(prev, next rune) bool {
	lead := func(r rune) bool { return r >= 0x1100 && r <= 0x115F || r >= 0xA960 && r <= 0xA97C }
	vowel := func(r rune) bool { return r >= 0x1160 && r <= 0x11A7 || r >= 0xD7B0 && r <= 0xD7C6 }
	final := func(r rune) bool { return r >= 0x11A8 && r <= 0x11FF || r >= 0xD7CB && r <= 0xD7FB }
	syllable := func(r rune) bool { return r >= 0xAC00 && r <= 0xD7A3 }
	switch {
	case lead(prev):
		return lead(next) || vowel(next) || syllable(next)
	case vowel(prev) || syllable(prev):
		return vowel(next) || final(next)
	case final(prev):
		return final(next)
	}
	return false
}
