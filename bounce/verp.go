package bounce

import (
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"golang.org/x/net/idna"

	"github.com/outbox-mail/outbox/internal/token"
)

// VERP errors. Parse returns an error wrapping one of them.
var (
	// ErrNotVERP: the address is not a return path of this VERP (another
	// domain, or a local part that does not start with "bounces+").
	ErrNotVERP = errors.New("bounce: not a VERP return path")
	// ErrBadToken: the address has the VERP form but its token was not
	// made with our secret (forged, altered or cut short).
	ErrBadToken = errors.New("bounce: VERP token does not verify")
)

const (
	verpPrefix  = "bounces+"
	verpVersion = 1
	verpTag     = 12      // bytes of HMAC: 96 bits, one guess per bounce sent
	maxRcpt     = 1 << 21 // recipients per message a token can name (3-byte uvarint)
)

// lower32 is base32 (RFC 4648) without padding; tokens are written in
// lowercase and read in either case, since some MTAs change the case of
// local parts.
var lower32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// VERP makes and checks per-recipient return paths bounces+TOKEN@DOMAIN,
// where TOKEN names a message and the index of one of its recipients and
// carries an HMAC-SHA256 tag, so that a bounce names exactly who failed
// and a forged one is refused. A token is at most 52 characters, the
// local part at most 60 (RFC 5321 allows 64).
type VERP struct {
	domain string
	keys   *token.Keys
}

// NewVERP returns the VERP of domain. secrets[0] signs new tokens; every
// secret verifies them (keep an old secret while its bounces may still
// come back). A secret has at least 16 bytes.
func NewVERP(domain string, secrets ...[]byte) (*VERP, error) {
	d, err := idna.Lookup.ToASCII(strings.TrimSuffix(domain, "."))
	if err != nil || d == "" || !strings.Contains(d, ".") {
		return nil, fmt.Errorf("bounce: %q is not a domain name for return paths", domain)
	}
	keys, err := token.New("outbox verp v1", verpTag, secrets...)
	if err != nil {
		return nil, fmt.Errorf("bounce: VERP secret: %w", err)
	}
	return &VERP{domain: strings.ToLower(d), keys: keys}, nil
}

// Domain is the bounce domain, lowercase, in A-labels.
func (v *VERP) Domain() string { return v.domain }

// ReturnPath returns the return path for recipient rcpt (its index in the
// message's recipient list) of message id, a UUID.
func (v *VERP) ReturnPath(id string, rcpt int) (string, error) {
	u, err := uuid.Parse(id)
	if err != nil {
		return "", fmt.Errorf("bounce: message id %q is not a UUID", id)
	}
	if rcpt < 0 || rcpt >= maxRcpt {
		return "", fmt.Errorf("bounce: recipient index %d out of range", rcpt)
	}
	p := payload(u, rcpt)
	tok := lower32.EncodeToString(append(p, v.keys.Tag(p)...))
	return verpPrefix + strings.ToLower(tok) + "@" + v.domain, nil
}

// payload is what a token carries and its tag covers: a version byte, the
// message id and the recipient index.
func payload(u uuid.UUID, rcpt int) []byte {
	p := append([]byte{verpVersion}, u[:]...)
	return binary.AppendUvarint(p, uint64(rcpt))
}

// Parse returns the message id and recipient index that a return path
// names. The domain and the "bounces+" prefix match in any case, and so
// does the token. The tag is checked in constant time.
func (v *VERP) Parse(addr string) (id string, rcpt int, err error) {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return "", 0, fmt.Errorf("%w: %q has no domain", ErrNotVERP, addr)
	}
	local, domain := addr[:at], strings.TrimSuffix(addr[at+1:], ".")
	if d, err := idna.Lookup.ToASCII(domain); err != nil || !strings.EqualFold(d, v.domain) {
		return "", 0, fmt.Errorf("%w: %q is not in %s", ErrNotVERP, addr, v.domain)
	}
	if len(local) < len(verpPrefix) || !strings.EqualFold(local[:len(verpPrefix)], verpPrefix) {
		return "", 0, fmt.Errorf("%w: %q does not start with %q", ErrNotVERP, addr, verpPrefix)
	}
	tok := strings.ToUpper(local[len(verpPrefix):])
	raw, err := lower32.DecodeString(tok)
	// Only the one encoding of the bytes is a token: no trailing bits,
	// no characters the decoder would skip.
	if err != nil || lower32.EncodeToString(raw) != tok || len(raw) < 1+16+1+verpTag || raw[0] != verpVersion {
		return "", 0, fmt.Errorf("%w: %q", ErrBadToken, addr)
	}
	p, tag := raw[:len(raw)-verpTag], raw[len(raw)-verpTag:]
	if !v.keys.Verify(p, tag) {
		return "", 0, fmt.Errorf("%w: %q", ErrBadToken, addr)
	}
	n, k := binary.Uvarint(p[17:])
	if k != len(p)-17 || n >= maxRcpt {
		// Tagged by us, so this cannot happen short of a bug; say so.
		return "", 0, fmt.Errorf("%w: %q has a bad recipient index", ErrBadToken, addr)
	}
	return uuid.UUID(p[1:17]).String(), int(n), nil
}
