package message

import (
	"errors"
	"fmt"
	"net/mail"
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Address is one mailbox: an optional display name and an addr-spec.
// Email holds the local part unquoted (`john doe@example.com` for
// `"john doe"@example.com`; a local part written whole as a quoted string
// is accepted too) and the domain in the form it is written to headers
// (A-labels when the local part is ASCII, so that such a message needs no
// SMTPUTF8). Quotes are added where a header or the envelope needs them.
type Address struct {
	Name  string
	Email string
}

// FieldError is a validation failure of one field of a Message; Field
// names it the way the API reports it ("to[2]", "headers[0]", "subject").
type FieldError struct {
	Field string
	Err   error
}

// Error reads like `to[2]: "bob@": missing domain`.
func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }

// Unwrap returns the underlying reason.
func (e *FieldError) Unwrap() error { return e.Err }

// addrErr describes why one address was refused, quoting what was given.
func addrErr(input, reason string) error {
	return fmt.Errorf("%q: %s", input, reason)
}

// ParseAddress parses one mailbox such as `Name <user@example.com>`,
// `"Doe, Jane" <jane@example.com>`, `=?utf-8?q?J=C3=B6rg?= <j@example.com>`
// or a bare `user@bücher.example`, and validates it fully.
func ParseAddress(s string) (Address, error) {
	if err := checkAddressInput(s); err != nil {
		return Address{}, addrErr(s, err.Error())
	}
	pa, err := mail.ParseAddress(s)
	if err != nil {
		return Address{}, addrErr(s, diagnose(s, err))
	}
	a, err := normalize(pa.Name, pa.Address)
	if err != nil {
		return Address{}, addrErr(s, err.Error())
	}
	return a, nil
}

// ParseAddressList parses a comma-separated list of mailboxes. An error
// names the first entry that is wrong.
func ParseAddressList(s string) ([]Address, error) {
	if err := checkAddressInput(s); err != nil {
		return nil, addrErr(s, err.Error())
	}
	list, err := mail.ParseAddressList(s)
	if err != nil {
		// net/mail does not say which entry failed; parse them one by one
		// to name it.
		for _, part := range splitList(s) {
			if _, perr := ParseAddress(part); perr != nil {
				return nil, perr
			}
		}
		return nil, addrErr(s, diagnose(s, err))
	}
	out := make([]Address, 0, len(list))
	for _, pa := range list {
		a, err := normalize(pa.Name, pa.Address)
		if err != nil {
			return nil, addrErr(pa.Address, err.Error())
		}
		out = append(out, a)
	}
	return out, nil
}

// checkAddressInput refuses bytes no address may contain; CR and LF get
// their own message because they are how header injection is attempted.
func checkAddressInput(s string) error {
	if err := checkHeaderValue(s); err != nil {
		return err
	}
	for _, r := range s {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return errors.New("contains a control character")
		}
	}
	return nil
}

// diagnose turns a net/mail error into a reason a person can act on.
func diagnose(s string, err error) string {
	spec := strings.TrimSpace(s)
	if i := strings.LastIndexByte(spec, '<'); i >= 0 {
		spec = strings.TrimSuffix(strings.TrimSpace(spec[i+1:]), ">")
	}
	switch {
	case spec == "":
		return "empty address"
	case !strings.Contains(spec, "@"):
		return "missing @"
	case strings.HasSuffix(spec, "@"):
		return "missing domain"
	case strings.HasPrefix(spec, "@"):
		return "missing local part"
	}
	return "malformed address (" + strings.TrimPrefix(err.Error(), "mail: ") + ")"
}

// splitList cuts an address list at the commas that separate entries,
// ignoring those inside quotes, comments and angle brackets.
func splitList(s string) []string {
	var parts []string
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '(' || c == '<':
			depth++
		case (c == ')' || c == '>') && depth > 0:
			depth--
		case c == ',' && depth == 0:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// normalize validates a parsed mailbox and puts its domain in header form.
// email is net/mail's addr-spec, whose local part comes unquoted: one that
// holds a double quote is refused, since Email could not then tell such a
// local part from a quoted one (see splitEmail).
func normalize(name, email string) (Address, error) {
	if err := checkName(name); err != nil {
		return Address{}, err
	}
	if at := strings.LastIndexByte(email, '@'); at > 0 && strings.Contains(email[:at], `"`) {
		return Address{}, errors.New("local part contains a double quote")
	}
	local, domain, err := splitEmail(email)
	if err != nil {
		return Address{}, err
	}
	hdrDomain, _, err := checkDomain(domain)
	if err != nil {
		return Address{}, err
	}
	if isASCII(local) {
		domain = hdrDomain
	}
	return Address{Name: name, Email: local + "@" + domain}, nil
}

func checkName(name string) error {
	if err := checkAddressInput(name); err != nil {
		return errors.New("display name " + err.Error())
	}
	return nil
}

// splitEmail separates local part and domain and checks the local part
// (RFC 5321 §4.5.3.1.1 caps it at 64 octets).
func splitEmail(email string) (local, domain string, err error) {
	at := strings.LastIndexByte(email, '@')
	switch {
	case email == "":
		return "", "", errors.New("empty address")
	case at < 0:
		return "", "", errors.New("missing @")
	case at == 0:
		return "", "", errors.New("missing local part")
	case at == len(email)-1:
		return "", "", errors.New("missing domain")
	}
	local, domain = email[:at], email[at+1:]
	if strings.Contains(local, `"`) {
		// Email holds the local part unquoted (as ParseAddress gives it);
		// one written as a quoted-string is accepted and unquoted, so that
		// it is neither quoted twice nor sent as two forms of one mailbox.
		u, ok := unquoteLocal(local)
		if !ok {
			return "", "", errors.New("local part contains a double quote outside a quoted string")
		}
		if u == "" {
			return "", "", errors.New("missing local part")
		}
		local = u
	}
	if len(local) > 64 {
		return "", "", errors.New("local part longer than 64 octets")
	}
	if err := checkAddressInput(local); err != nil {
		return "", "", errors.New("local part " + err.Error())
	}
	return local, domain, nil
}

// unquoteLocal decodes a local part written whole as an RFC 5322
// quoted-string ("john doe"); ok is false for anything else that holds a
// double quote, and for content with a double quote of its own.
func unquoteLocal(s string) (string, bool) {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return "", false
	}
	var b strings.Builder
	for i := 1; i < len(s)-1; i++ {
		c := s[i]
		if c == '\\' {
			i++
			if i == len(s)-1 {
				return "", false // the backslash escapes the closing quote
			}
			c = s[i]
		}
		if c == '"' {
			return "", false
		}
		b.WriteByte(c)
	}
	return b.String(), true
}

// checkDomain validates a domain and returns its header form (A-labels)
// and its envelope form (also A-labels, lower case). Domain literals such
// as [192.0.2.1] are kept as they are once their address is valid.
func checkDomain(domain string) (header, envelope string, err error) {
	if strings.HasPrefix(domain, "[") {
		lit := strings.TrimSuffix(strings.TrimPrefix(domain, "["), "]")
		lit = strings.TrimPrefix(lit, "IPv6:")
		if ip, perr := netip.ParseAddr(lit); perr != nil || ip.Zone() != "" || !strings.HasSuffix(domain, "]") {
			return "", "", errors.New("invalid domain literal")
		}
		return domain, domain, nil
	}
	ascii, err := idna.Lookup.ToASCII(domain)
	if err != nil || ascii == "" {
		return "", "", fmt.Errorf("invalid domain %q", domain)
	}
	if len(ascii) > 253 {
		return "", "", errors.New("domain longer than 253 octets")
	}
	for _, label := range strings.Split(ascii, ".") {
		if label == "" || len(label) > 63 {
			return "", "", fmt.Errorf("invalid domain %q", domain)
		}
	}
	header = domain
	if !isASCII(domain) {
		header = ascii
	}
	return header, ascii, nil
}

// validateAddress checks an Address built by hand (not via ParseAddress)
// with the same rules, so that Message fields are held to one standard.
func validateAddress(a Address) error {
	if err := checkName(a.Name); err != nil {
		return err
	}
	if err := checkAddressInput(a.Email); err != nil {
		return addrErr(a.Email, err.Error())
	}
	local, domain, err := splitEmail(a.Email)
	if err != nil {
		return addrErr(a.Email, err.Error())
	}
	if _, _, err := checkDomain(domain); err != nil {
		return addrErr(a.Email, err.Error())
	}
	if _, err := mail.ParseAddress(renderAddrSpec(local, domain)); err != nil {
		return addrErr(a.Email, diagnose(a.Email, err))
	}
	return nil
}

// envelope returns the address as SMTP wants it: the local part as an
// RFC 5321 dot-string or quoted-string (so that a space or "> NOTIFY=" in
// it cannot end the path early), the domain in lower-case A-labels.
func (a Address) envelope() string {
	local, domain, err := splitEmail(a.Email)
	if err != nil {
		return a.Email
	}
	if _, env, err := checkDomain(domain); err == nil {
		domain = env
	}
	return renderAddrSpec(local, domain)
}

// headerSpec is the addr-spec as it goes into a header.
func (a Address) headerSpec() string {
	local, domain, err := splitEmail(a.Email)
	if err != nil {
		return a.Email
	}
	if isASCII(local) {
		if h, _, err := checkDomain(domain); err == nil {
			domain = h
		}
	}
	return renderAddrSpec(local, domain)
}

// String renders the address for a header, on one line: the display name
// as atoms, a quoted string, or RFC 2047 encoded words when it is not
// ASCII; then the addr-spec.
func (a Address) String() string {
	f := newFolder("", 0)
	a.fold(f, "")
	return f.String()
}

// fold writes the address into a header being built, letting the folder
// break lines between the words of the display name; suffix (a list
// comma) sticks to the last token.
func (a Address) fold(f *folder, suffix string) {
	switch {
	case a.Name == "":
		f.token(a.headerSpec() + suffix)
		return
	case isAtomPhrase(a.Name):
		for _, w := range strings.Split(a.Name, " ") {
			f.token(w)
		}
	case isASCIIPrintable(a.Name) && !strings.Contains(a.Name, "\t") && len(a.Name) < 60 &&
		!strings.Contains(a.Name, "=?"):
		f.token(quoteString(a.Name))
	default:
		encodedPhrase(f, a.Name)
	}
	f.token("<" + a.headerSpec() + ">" + suffix)
}

// encodedPhrase writes a display name that needs RFC 2047: runs of words
// that need encoding as encoded words, and the ASCII words between them as
// atoms or quoted strings. Besides being readable, the atoms matter to decoders that keep
// the white space between two encoded words of a phrase (Python's email
// package does, against RFC 2047 §6.2): between an atom and an encoded
// word every decoder keeps it. Names with runs of spaces, tabs or spaces at
// either end are encoded whole, since only an encoded word keeps those.
func encodedPhrase(f *folder, name string) {
	words := strings.Split(name, " ")
	for _, w := range words {
		if w == "" || strings.Contains(w, "\t") {
			f.encoded(name)
			return
		}
	}
	var run []string
	flush := func() {
		if len(run) > 0 {
			f.encoded(strings.Join(run, " "))
			run = run[:0]
		}
	}
	for _, w := range words {
		switch {
		case isAtomWord(w):
			flush()
			f.token(w)
		case len(w) <= 60 && isASCIIPrintable(w) && !strings.Contains(w, "=?"):
			flush()
			f.token(quoteString(w)) // "Co." or "Doe,": ASCII, but not an atom
		default:
			run = append(run, w)
		}
	}
	flush()
}

// isAtomWord reports an ASCII atom that may stand in a phrase as it is.
func isAtomWord(w string) bool {
	if w == "" || len(w) > 60 || !isASCII(w) || strings.Contains(w, "=?") {
		return false
	}
	for _, r := range w {
		if !atext(r) {
			return false
		}
	}
	return true
}

// renderAddrSpec quotes the local part when it is not a dot-atom.
func renderAddrSpec(local, domain string) string {
	if !isDotAtom(local) {
		local = quoteString(local)
	}
	return local + "@" + domain
}

// atext reports RFC 5322 atext, extended to UTF-8 by RFC 6532.
func atext(r rune) bool {
	if r >= utf8.RuneSelf {
		return r != utf8.RuneError
	}
	c := byte(r)
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

func isDotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for _, r := range s {
		if r != '.' && !atext(r) {
			return false
		}
	}
	return true
}

// isAtomPhrase reports ASCII display names that can go unquoted: atoms
// separated by single spaces, none looking like an encoded word.
func isAtomPhrase(s string) bool {
	if len(s) > 60 {
		return false
	}
	for _, w := range strings.Split(s, " ") {
		if !isAtomWord(w) {
			return false
		}
	}
	return true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
