package submission

import (
	"net"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-smtp"
)

// addrError says what is wrong with an envelope address, in words a
// client's user can act on.
type addrError string

func (e addrError) Error() string { return string(e) }

// errNeedsSMTPUTF8 refuses a non-ASCII address given without SMTPUTF8:
// 553 5.6.7 (RFC 6531 §3.5), the code outbox's SMTP client gives for the
// same thing, for the sender and the recipients alike.
const errNeedsSMTPUTF8 = addrError("the address has non-ASCII characters but MAIL did not give SMTPUTF8")

func senderError(err error) error {
	code := smtp.EnhancedCode{5, 1, 7}
	if err == errNeedsSMTPUTF8 {
		code = smtp.EnhancedCode{5, 6, 7}
	}
	return &smtp.SMTPError{Code: 553, EnhancedCode: code, Message: "Invalid sender address: " + err.Error()}
}

func recipientError(err error) error {
	code := smtp.EnhancedCode{5, 1, 3}
	if err == errNeedsSMTPUTF8 {
		code = smtp.EnhancedCode{5, 6, 7}
	}
	return &smtp.SMTPError{Code: 553, EnhancedCode: code, Message: "Invalid recipient address: " + err.Error()}
}

// checkAddress checks that addr is an RFC 5321 Mailbox (local@domain) and
// returns it in canonical form: go-smtp has only split the path (taking the
// domain as anything up to '>') and has removed the quotes of a quoted
// local part, which are put back here. The null sender is allowed for MAIL
// only. Non-ASCII needs SMTPUTF8.
func checkAddress(addr string, utf8OK, sender bool) (string, error) {
	if addr == "" {
		if sender {
			return "", nil
		}
		return "", addrError("the address is empty")
	}
	if len(addr) > 254 {
		return "", addrError("the address is longer than 254 octets")
	}
	for _, r := range addr {
		if r < 0x20 || r == 0x7f {
			return "", addrError("the address contains a control character (CR, LF or other)")
		}
		if r >= 0x80 && !utf8OK {
			return "", errNeedsSMTPUTF8
		}
	}
	if !utf8.ValidString(addr) {
		return "", addrError("the address is not valid UTF-8")
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return "", addrError("the address has no domain (expected local-part@domain)")
	}
	local := canonicalLocal(addr[:at])
	if err := checkLocalPart(local); err != nil {
		return "", err
	}
	if err := checkDomain(addr[at+1:]); err != nil {
		return "", err
	}
	return local + addr[at:], nil
}

// canonicalLocal quotes a local part that is not a dot-string, as RFC 5321
// §4.1.2 asks, escaping backslash and quote.
func canonicalLocal(local string) string {
	if isDotString(local) {
		return local
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range local {
		if r == '"' || r == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}

func isDotString(local string) bool {
	for _, atom := range strings.Split(local, ".") {
		if atom == "" {
			return false
		}
		for _, r := range atom {
			if !isAtext(r) {
				return false
			}
		}
	}
	return true
}

func checkLocalPart(local string) error {
	switch {
	case local == "" || local == `""`:
		return addrError("the local part (before @) is empty")
	case len(local) > 64:
		return addrError("the local part (before @) is longer than 64 octets")
	case local[0] == '"':
		return checkQuoted(local)
	}
	return nil
}

func checkQuoted(q string) error {
	if len(q) < 2 || q[len(q)-1] != '"' {
		return addrError("the quoted local part is not closed")
	}
	inner := q[1 : len(q)-1]
	for i := 0; i < len(inner); i++ {
		switch c := inner[i]; {
		case c == '\\':
			i++
			if i == len(inner) {
				return addrError("the quoted local part ends with a backslash")
			}
		case c == '"':
			return addrError("the quoted local part has an unescaped quote")
		}
	}
	return nil
}

func checkDomain(d string) error {
	if d == "" {
		return addrError("the domain (after @) is empty")
	}
	if d[0] == '[' {
		return checkLiteral(d)
	}
	if len(d) > 253 {
		return addrError("the domain is longer than 253 octets")
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" {
			return addrError("the domain has an empty label")
		}
		if len(label) > 63 {
			return addrError("a domain label is longer than 63 octets")
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return addrError("a domain label starts or ends with a hyphen")
		}
		for _, r := range label {
			if !isLetDig(r) && r != '-' {
				return addrError("the domain has a character not allowed in a host name: " + printable(r))
			}
		}
	}
	return nil
}

// checkLiteral accepts [IPv4] and [IPv6:...] address literals.
func checkLiteral(d string) error {
	if d[len(d)-1] != ']' {
		return addrError("the address literal is not closed by ]")
	}
	lit := d[1 : len(d)-1]
	if v6, ok := strings.CutPrefix(lit, "IPv6:"); ok {
		if ip := net.ParseIP(v6); ip != nil && strings.Contains(v6, ":") {
			return nil
		}
		return addrError("the IPv6 address literal is not valid")
	}
	if ip := net.ParseIP(lit); ip != nil && ip.To4() != nil && !strings.Contains(lit, ":") {
		return nil
	}
	return addrError("the address literal is not a valid IP address")
}

func isLetDig(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r >= 0x80
}

// isAtext reports RFC 5322 atext, plus UTF-8 (RFC 6531), which the caller
// has already refused without SMTPUTF8.
func isAtext(r rune) bool {
	return isLetDig(r) || strings.ContainsRune("!#$%&'*+-/=?^_`{|}~", r)
}

func printable(r rune) string {
	if r == ' ' {
		return "space"
	}
	return "'" + string(r) + "'"
}

// sanitizeDomain makes a client-supplied HELO name (or our host name) safe
// to write into a header: only host name and address literal characters
// are kept, so nothing can end the line or open a comment.
func sanitizeDomain(s string) string {
	s = strings.Map(func(r rune) rune {
		if isLetDig(r) && r < 0x80 || strings.ContainsRune(".-_:[]", r) {
			return r
		}
		return '_'
	}, s)
	if len(s) > 255 {
		s = s[:255]
	}
	if s == "" {
		return "unknown"
	}
	return s
}

// logSafe bounds a client-supplied string for logging and replaces control
// characters, so a log line cannot be forged or flooded.
func logSafe(s string, n int) string {
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "") + "…"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}
