package smtp

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Relay is a parsed relay URL: smtp://user:pass@host:port?starttls=POLICY
// (default port 587) or smtps://user:pass@host:port (implicit TLS, default
// port 465). Parameters: starttls=required|opportunistic|off,
// insecure_auth=true, ca=PATH, tls_verify=false and
// auth=plain|login|cram-md5|xoauth2 (with xoauth2 the password is the
// OAuth bearer token).
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
	// CAFile (?ca=PATH) names PEM certificates to trust for this relay
	// instead of the system roots; RootCAs holds them, read at parse time.
	CAFile  string
	RootCAs *x509.CertPool
	// InsecureSkipVerify (?tls_verify=false) encrypts without verifying
	// the relay's certificate. A daemon should say so loudly at start.
	InsecureSkipVerify bool
	// AuthMechanism (?auth=) forces one SASL mechanism, upper case, e.g.
	// "CRAM-MD5"; empty chooses from what the server offers.
	AuthMechanism string
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
	return parseRelayURL(s, loadCAFile)
}

// parseRelayURL is ParseRelayURL with the reading of ca= files given.
func parseRelayURL(s string, loadCA func(path string) (*x509.CertPool, error)) (*Relay, error) {
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
	if err := r.check(); err != nil {
		return nil, err
	}
	if r.CAFile != "" {
		if r.RootCAs, err = loadCA(r.CAFile); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// loadCAFile reads the PEM certificates of a ca= parameter.
func loadCAFile(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("relay URL: ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("relay URL: ca=%s: no PEM certificate in the file", path)
	}
	return pool, nil
}

func (r *Relay) parseHost(u *url.URL) error {
	r.Host = u.Hostname()
	if r.Host == "" {
		return fmt.Errorf("relay URL: missing host")
	}
	if ip, _, _ := strings.Cut(r.Host, "%"); strings.Contains(r.Host, ":") && net.ParseIP(ip) == nil {
		// A colon left in the host is a stray port or an unbracketed IPv6
		// address; not quoted, as it may be part of a mistyped password.
		return fmt.Errorf("relay URL: invalid host (want host:port, an IPv6 address in brackets: [::1]:25)")
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
	for k, vs := range q {
		v := vs[len(vs)-1]
		var err error
		switch k {
		case "starttls":
			err = r.parseStartTLS(v)
		case "insecure_auth":
			r.AllowInsecureAuth, err = parseBoolParam(k, v)
		case "tls_verify":
			var verify bool
			verify, err = parseBoolParam(k, v)
			r.InsecureSkipVerify = !verify
		case "ca":
			if v == "" {
				err = errors.New("relay URL: ca: want the path of a PEM file")
			}
			r.CAFile = v
		case "auth":
			r.AuthMechanism = strings.ToUpper(v)
			if !slices.Contains(authMechanisms, r.AuthMechanism) {
				err = fmt.Errorf("relay URL: auth=%q: want plain, login, cram-md5 or xoauth2", v)
			}
		default:
			err = fmt.Errorf("relay URL: unknown parameter %q", k)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (r *Relay) parseStartTLS(v string) error {
	switch strings.ToLower(v) {
	case "required":
		r.StartTLS = TLSRequired
	case "opportunistic":
		r.StartTLS = TLSOpportunistic
	case "off":
		r.StartTLS = TLSOff
	default:
		return fmt.Errorf("relay URL: starttls=%q: want required, opportunistic or off", v)
	}
	return nil
}

func parseBoolParam(k, v string) (bool, error) {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("relay URL: %s=%q: want true or false", k, v)
	}
	return b, nil
}

// check refuses parameters that contradict each other.
func (r *Relay) check() error {
	switch {
	case r.ImplicitTLS && r.StartTLS != TLSDefault:
		return fmt.Errorf("relay URL: starttls does not apply to smtps (implicit TLS)")
	case r.StartTLS == TLSOff && (r.CAFile != "" || r.InsecureSkipVerify):
		return fmt.Errorf("relay URL: ca and tls_verify need TLS, and starttls=off turns it off")
	case r.AuthMechanism != "" && r.Username == "":
		return fmt.Errorf("relay URL: auth=%s needs credentials (smtp://user:password@host)", strings.ToLower(r.AuthMechanism))
	case r.AuthMechanism == "XOAUTH2" && r.Password == "":
		return fmt.Errorf("relay URL: auth=xoauth2 needs the bearer token as the password (smtp://user:token@host)")
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

// String returns the URL with the password (or token) replaced by ***;
// parsed again it gives the same relay but for the secret.
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
	if r.CAFile != "" {
		q.Set("ca", r.CAFile)
	}
	if r.InsecureSkipVerify {
		q.Set("tls_verify", "false")
	}
	if r.AuthMechanism != "" {
		q.Set("auth", strings.ToLower(r.AuthMechanism))
	}
	// A / needs no escape in a query; keeping it leaves ca= paths legible.
	u.RawQuery = strings.ReplaceAll(q.Encode(), "%2F", "/")
	return strings.Replace(u.String(), "%2A%2A%2A", redacted, 1)
}

// Options returns client options for this relay: base (may be nil) with
// the relay's TLS mode, trust and credentials filled in.
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
	if r.AuthMechanism != "" {
		o.AuthMechanism = r.AuthMechanism
	}
	if r.AuthMechanism == "XOAUTH2" {
		o.OAuthToken, o.Password = r.Password, ""
	}
	if r.RootCAs != nil || r.InsecureSkipVerify {
		cfg := &tls.Config{}
		if o.TLSConfig != nil {
			cfg = o.TLSConfig.Clone()
		}
		if r.RootCAs != nil {
			cfg.RootCAs = r.RootCAs
		}
		cfg.InsecureSkipVerify = cfg.InsecureSkipVerify || r.InsecureSkipVerify
		o.TLSConfig = cfg
	}
	return &o
}
