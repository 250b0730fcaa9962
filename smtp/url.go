package smtp

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Relay is a parsed relay URL: smtp://user:pass@host:port?starttls=POLICY
// (default port 587) or smtps://user:pass@host:port (implicit TLS, default
// port 465).
type Relay struct {
	Host        string
	Port        int
	ImplicitTLS bool
	StartTLS    TLSPolicy // TLSDefault when the URL does not say
	Username    string
	Password    string
	// AllowInsecureAuth (?insecure_auth=true) permits credentials without
	// TLS, e.g. to a relay on loopback.
	AllowInsecureAuth bool
}

// errMalformedURL is the error for a relay URL that does not parse, or
// whose user information spilled into the path, query or fragment. It
// names no part of the URL: any of it could be the password.
var errMalformedURL = errors.New("relay URL is malformed (is the password percent-encoded? e.g. / as %2F, ? as %3F, # as %23, % as %25; want smtp://user:password@host:port)")

// ParseRelayURL parses a relay URL; the error names what is wrong. It
// quotes only parts that cannot hold the password (scheme, query keys and
// values of a URL that parsed cleanly), never the user information nor
// anything the URL parser could not place.
func ParseRelayURL(s string) (*Relay, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, redactURLError(err)
	}
	// The user information ends at its last @: an @ after the host means a
	// /, ? or # in the password cut it short, and what follows the cut
	// (path, query, fragment, even the port) may be the password.
	if strings.Contains(u.Opaque, "@") || strings.Contains(u.Path, "@") || strings.Contains(u.RawPath, "@") ||
		strings.Contains(u.RawQuery, "@") || strings.Contains(u.Fragment, "@") {
		return nil, errMalformedURL
	}
	r := &Relay{}
	switch strings.ToLower(u.Scheme) {
	case "smtp":
		r.Port = 587
	case "smtps":
		r.Port, r.ImplicitTLS = 465, true
	case "":
		return nil, fmt.Errorf("relay URL: missing scheme (want smtp:// or smtps://)")
	default:
		// A scheme is letters, digits, + - and . before the first colon:
		// never the password, which follows a colon.
		return nil, fmt.Errorf("relay URL: unknown scheme %q (want smtp or smtps)", u.Scheme)
	}
	if u.Opaque != "" {
		return nil, fmt.Errorf("relay URL: missing // after %s: (want %s://user:password@host:port)", u.Scheme, strings.ToLower(u.Scheme))
	}
	if err := r.parseHost(u); err != nil {
		return nil, err
	}
	if u.User != nil {
		r.Username = u.User.Username()
		r.Password, _ = u.User.Password()
	}
	if u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("relay URL: unexpected path after the host (want %s://user:password@host:port?parameters)", strings.ToLower(u.Scheme))
	}
	if u.Fragment != "" || strings.HasSuffix(s, "#") {
		return nil, errMalformedURL
	}
	if err := r.parseQuery(u.Query()); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Relay) parseHost(u *url.URL) error {
	r.Host = u.Hostname()
	if r.Host == "" {
		return fmt.Errorf("relay URL: missing host")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			// Not quoted: digits that are no port may be a password.
			return fmt.Errorf("relay URL: invalid port (want 1 to 65535)")
		}
		r.Port = n
	}
	return nil
}

func (r *Relay) parseQuery(q url.Values) error {
	for k, v := range q {
		switch k {
		case "starttls":
			switch strings.ToLower(v[len(v)-1]) {
			case "required":
				r.StartTLS = TLSRequired
			case "opportunistic":
				r.StartTLS = TLSOpportunistic
			case "off":
				r.StartTLS = TLSOff
			default:
				return fmt.Errorf("relay URL: starttls=%q: want required, opportunistic or off", v[len(v)-1])
			}
		case "insecure_auth":
			b, err := strconv.ParseBool(v[len(v)-1])
			if err != nil {
				return fmt.Errorf("relay URL: insecure_auth=%q: want true or false", v[len(v)-1])
			}
			r.AllowInsecureAuth = b
		default:
			return fmt.Errorf("relay URL: unknown parameter %q", k)
		}
	}
	if r.ImplicitTLS && r.StartTLS != TLSDefault {
		return fmt.Errorf("relay URL: starttls does not apply to smtps (implicit TLS)")
	}
	return nil
}

// redactURLError replaces a url.Parse error, which quotes the URL or the
// part of it that failed (the password, as often as not), with one that
// quotes nothing.
func redactURLError(err error) error {
	var ee url.EscapeError
	if errors.As(err, &ee) {
		return errors.New("relay URL: invalid URL escape (a % must be followed by two hex digits; write a % in the password as %25)")
	}
	if strings.Contains(err.Error(), "invalid control character") {
		return errors.New("relay URL: invalid control character in the URL")
	}
	return errMalformedURL
}

// Addr returns "host:port".
func (r *Relay) Addr() string { return net.JoinHostPort(r.Host, strconv.Itoa(r.Port)) }

// String returns the URL with the password replaced by ***.
func (r *Relay) String() string {
	u := url.URL{Scheme: "smtp", Host: r.Addr()}
	if r.ImplicitTLS {
		u.Scheme = "smtps"
	}
	if r.Username != "" || r.Password != "" {
		if r.Password != "" {
			u.User = url.UserPassword(r.Username, redacted)
		} else {
			u.User = url.User(r.Username)
		}
	}
	q := url.Values{}
	if r.StartTLS != TLSDefault {
		q.Set("starttls", r.StartTLS.String())
	}
	if r.AllowInsecureAuth {
		q.Set("insecure_auth", "true")
	}
	u.RawQuery = q.Encode()
	return strings.Replace(u.String(), "%2A%2A%2A", redacted, 1)
}

// Options returns client options for this relay: base (may be nil) with
// the relay's TLS mode and credentials filled in.
func (r *Relay) Options(base *Options) *Options {
	var o Options
	if base != nil {
		o = *base
	}
	o.ImplicitTLS = r.ImplicitTLS
	if r.StartTLS != TLSDefault {
		o.StartTLS = r.StartTLS
	}
	o.Username, o.Password = r.Username, r.Password
	o.AllowInsecureAuth = o.AllowInsecureAuth || r.AllowInsecureAuth
	return &o
}
