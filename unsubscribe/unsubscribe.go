// Package unsubscribe makes and checks the signed tokens of one-click
// unsubscribe links (RFC 8058) and writes the List-Unsubscribe and
// List-Unsubscribe-Post header fields (RFC 2369) that carry them.
//
// A token names a sender domain and a recipient address, and optionally
// when it was issued; it is signed, not encrypted (the address it names is
// the address it was sent to). Nothing is stored: a link keeps working
// for as long as its secret is kept.
package unsubscribe

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/net/idna"

	"github.com/outbox-mail/outbox/internal/token"
)

// ErrBadToken is wrapped by the error Parse returns for a token that was
// not made with our secret, or that is not a token at all.
var ErrBadToken = errors.New("unsubscribe: token does not verify")

// Subscription is what a token names: mail from Domain to Address.
type Subscription struct {
	Domain  string    // the sender domain, lowercase, in A-labels
	Address string    // the recipient as given to Token
	Issued  time.Time // when the token was made (seconds); zero if not recorded
}

const (
	tokenVersion = 1
	tagSize      = 16
	maxAddress   = 320
	maxToken     = 2048
)

// encoding is base64url without padding, decoding strictly: a token has
// exactly one accepted spelling, the one Token writes (see Parse).
var encoding = base64.RawURLEncoding.Strict()

// Tokens makes and checks unsubscribe tokens.
type Tokens struct {
	keys *token.Keys
}

// New returns Tokens that sign with secrets[0] and accept tokens signed
// with any of secrets (each at least 16 bytes), so a secret can be rotated
// while the links of mail already sent keep working.
func New(secrets ...[]byte) (*Tokens, error) {
	keys, err := token.New("outbox unsubscribe v1", tagSize, secrets...)
	if err != nil {
		return nil, fmt.Errorf("unsubscribe: %w", err)
	}
	return &Tokens{keys: keys}, nil
}

// Token returns the URL-safe token (base64url, no padding) for s; s.Issued
// is recorded when it is not zero.
func (t *Tokens) Token(s Subscription) (string, error) {
	d, err := normalizeDomain(s.Domain)
	if err != nil {
		return "", err
	}
	if err := checkAddress(s.Address); err != nil {
		return "", err
	}
	var issued uint64
	if !s.Issued.IsZero() {
		if s.Issued.Unix() <= 0 {
			return "", fmt.Errorf("unsubscribe: issue time %v is before 1970", s.Issued)
		}
		issued = uint64(s.Issued.Unix())
	}
	p := []byte{tokenVersion}
	p = binary.AppendUvarint(p, issued)
	p = binary.AppendUvarint(p, uint64(len(d)))
	p = append(append(p, d...), s.Address...)
	return encoding.EncodeToString(append(p, t.keys.Tag(p)...)), nil
}

// Parse checks a token's tag in constant time and returns what it names.
// Whether an old token is still honoured (see Issued) is the caller's
// choice. Only the spelling Token writes is accepted: not one whose last
// character differs in the bits base64 leaves unused, nor one with line
// breaks in it (which a lenient decoder skips), so a token seen once —
// in a log, by a rate limit — cannot come back looking new.
func (t *Tokens) Parse(tok string) (Subscription, error) {
	if len(tok) > maxToken {
		return Subscription{}, fmt.Errorf("%w: malformed", ErrBadToken)
	}
	raw, err := encoding.DecodeString(tok)
	if err != nil || encoding.EncodeToString(raw) != tok || len(raw) < 1+tagSize {
		return Subscription{}, fmt.Errorf("%w: malformed", ErrBadToken)
	}
	p, tag := raw[:len(raw)-tagSize], raw[len(raw)-tagSize:]
	if !t.keys.Verify(p, tag) {
		return Subscription{}, ErrBadToken
	}
	// Tagged by us: what follows was written by Token. Still, read it
	// with care.
	rest := p[1:]
	issued, n := binary.Uvarint(rest)
	if p[0] != tokenVersion || n <= 0 {
		return Subscription{}, fmt.Errorf("%w: unknown layout", ErrBadToken)
	}
	rest = rest[n:]
	dlen, n := binary.Uvarint(rest)
	if n <= 0 || dlen > uint64(len(rest)-n) || issued > 1<<40 {
		return Subscription{}, fmt.Errorf("%w: unknown layout", ErrBadToken)
	}
	rest = rest[n:]
	s := Subscription{Domain: string(rest[:dlen]), Address: string(rest[dlen:])}
	if issued != 0 {
		s.Issued = time.Unix(int64(issued), 0)
	}
	return s, nil
}

func normalizeDomain(d string) (string, error) {
	a, err := idna.Lookup.ToASCII(strings.TrimSuffix(d, "."))
	if err != nil || a == "" || len(a) > 253 {
		return "", fmt.Errorf("unsubscribe: %q is not a domain name", d)
	}
	return strings.ToLower(a), nil
}

// checkAddress accepts what can be an email address: UTF-8 with an @,
// no controls, no white space, not too long.
func checkAddress(a string) error {
	if a == "" || len(a) > maxAddress || !utf8.ValidString(a) || !strings.Contains(a, "@") {
		return fmt.Errorf("unsubscribe: %q is not an email address", a)
	}
	for _, r := range a {
		if r < 0x21 || r == 0x7f {
			return fmt.Errorf("unsubscribe: address %q contains a control character or white space", a)
		}
	}
	return nil
}
