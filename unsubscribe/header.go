package unsubscribe

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// PostValue is the List-Unsubscribe-Post value of RFC 8058, and also the
// body the one-click POST carries.
const PostValue = "List-Unsubscribe=One-Click"

// maxLine is RFC 5322's limit on a header line, CRLF excluded.
const maxLine = 998

// Values returns the List-Unsubscribe value "<URL>" or "<URL>, <mailto:…>"
// and the List-Unsubscribe-Post value, unfolded, for a message builder
// that folds fields itself (the message package does). link must be an
// absolute http or https URL (RFC 8058 asks for https); mailto, optional,
// is an address to write to. Anything that could leave the angle brackets
// or the field is escaped or refused.
func Values(link, mailto string) (listUnsubscribe, listUnsubscribePost string, err error) {
	u, err := cleanURL(link)
	if err != nil {
		return "", "", err
	}
	v := "<" + u + ">"
	if mailto != "" {
		m, err := mailtoURL(mailto)
		if err != nil {
			return "", "", err
		}
		v += ", <" + m + ">"
	}
	return v, PostValue, nil
}

// Fields returns both header fields, folded and ending in CRLF, ready to
// be written into a header block (for example before a stored message at
// delivery time, one recipient at a time; DKIM signing then covers them).
// A URL is never folded inside its brackets, so a line is refused if it
// would be longer than 998 octets.
func Fields(link, mailto string) ([]byte, error) {
	v, post, err := Values(link, mailto)
	if err != nil {
		return nil, err
	}
	first, second, two := strings.Cut(v, ", ")
	lines := "List-Unsubscribe: " + first
	if two {
		if len(lines)+2+len(second) > 78 {
			lines += ",\r\n " + second
		} else {
			lines += ", " + second
		}
	}
	for _, l := range strings.Split(lines, "\r\n") {
		if len(l) > maxLine {
			return nil, fmt.Errorf("unsubscribe: List-Unsubscribe line of %d octets; the limit is %d", len(l), maxLine)
		}
	}
	return []byte(lines + "\r\nList-Unsubscribe-Post: " + post + "\r\n"), nil
}

// cleanURL returns link re-encoded so that it holds only printable ASCII
// that may stand between angle brackets.
func cleanURL(link string) (string, error) {
	u, err := url.Parse(link)
	if err != nil {
		return "", fmt.Errorf("unsubscribe: URL %q: %v", link, err)
	}
	if u.Scheme != "https" && u.Scheme != "http" || u.Host == "" || u.User != nil {
		return "", fmt.Errorf("unsubscribe: %q is not an absolute http(s) URL without credentials", link)
	}
	// url.String leaves the query as given: escape what is left.
	s := escapeUnsafe(u.String())
	if err := checkBracketed(s); err != nil {
		return "", fmt.Errorf("unsubscribe: URL %q: %v", link, err)
	}
	return s, nil
}

// escapeUnsafe percent-encodes the bytes that may not stand in a URL
// between angle brackets (RFC 3986 excludes them all).
func escapeUnsafe(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || strings.IndexByte("<>\"\\^`{|}", c) >= 0 {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// mailtoURL makes a mailto: URL (RFC 6068) of an address.
func mailtoURL(addr string) (string, error) {
	if err := checkAddress(addr); err != nil {
		return "", err
	}
	local, domain, _ := strings.Cut(addr, "@")
	if strings.ContainsAny(domain, "@") {
		return "", fmt.Errorf("unsubscribe: %q is not an email address", addr)
	}
	s := "mailto:" + url.PathEscape(local) + "@" + url.PathEscape(domain)
	if err := checkBracketed(s); err != nil {
		return "", fmt.Errorf("unsubscribe: mailto %q: %v", addr, err)
	}
	return s, nil
}

// checkBracketed refuses what could end the <…> or the header field.
func checkBracketed(s string) error {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '<' || c == '>' || c == '"' {
			return errors.New("contains a character that cannot stand in <…>")
		}
	}
	return nil
}
