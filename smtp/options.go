package smtp

import (
	"context"
	"crypto/tls"
	"net"
	"time"
)

// TLSPolicy says whether and how STARTTLS is used on a plain connection.
type TLSPolicy int

const (
	// TLSDefault is TLSRequired when credentials are configured and
	// TLSOpportunistic otherwise.
	TLSDefault TLSPolicy = iota
	// TLSRequired fails the connection unless STARTTLS succeeds.
	TLSRequired
	// TLSOpportunistic uses STARTTLS when offered, plain text otherwise
	// (RFC 7435): a certificate that does not verify is recorded, not
	// refused, and a handshake that fails is retried once in plain text.
	TLSOpportunistic
	// TLSOff never uses STARTTLS.
	TLSOff
)

// String returns the policy's name as used in relay URLs.
func (p TLSPolicy) String() string {
	switch p {
	case TLSRequired:
		return "required"
	case TLSOpportunistic:
		return "opportunistic"
	case TLSOff:
		return "off"
	}
	return "default"
}

// Timeouts bound each stage of a session. Each is an inactivity limit for
// one command (or one block of data); zero values take the RFC 5321
// §4.5.3.2 defaults. A stalled server costs only the connection it
// stalls: the limit ends that session, nothing else waits on it.
type Timeouts struct {
	Dial      time.Duration // TCP connect and TLS handshake (default 30s)
	Greeting  time.Duration // 220 greeting (default 5m)
	Command   time.Duration // EHLO, STARTTLS, AUTH, RSET, NOOP, QUIT (default 5m)
	MailRcpt  time.Duration // MAIL and RCPT replies (default 5m)
	DataInit  time.Duration // the 354 reply to DATA (default 2m)
	DataBlock time.Duration // each write of body data (default 3m)
	DataTerm  time.Duration // reply to the final dot or BDAT LAST (default 10m)
}

func (t Timeouts) withDefaults() Timeouts {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&t.Dial, 30*time.Second)
	def(&t.Greeting, 5*time.Minute)
	def(&t.Command, 5*time.Minute)
	def(&t.MailRcpt, 5*time.Minute)
	def(&t.DataInit, 2*time.Minute)
	def(&t.DataBlock, 3*time.Minute)
	def(&t.DataTerm, 10*time.Minute)
	return t
}

// DefaultChunkSize is the BDAT chunk size used when Options.ChunkSize is 0.
const DefaultChunkSize = 128 << 10

// Options configures a Client. The zero value is usable: EHLO as
// "localhost", opportunistic STARTTLS (the certificate checked and reported,
// not required), no AUTH.
type Options struct {
	LocalName string // name given in EHLO/HELO (default "localhost")
	// ServerName is the server's host name when addr is one of its IP
	// addresses (an MX host dialled address by address): the name TLS
	// verifies and SendResult.Server reports. Default: addr's host.
	ServerName  string
	ImplicitTLS bool      // TLS from the first byte (smtps, port 465)
	StartTLS    TLSPolicy // STARTTLS policy on a plain connection
	// TLSConfig: nil verifies against the system roots, ServerName from
	// addr; RootCAs names other roots, InsecureSkipVerify turns the check
	// off (the outcome is still reported in SendResult.TLSVerified).
	TLSConfig *tls.Config

	Username   string // credentials; AUTH is done when Username is set
	Password   string
	OAuthToken string // bearer token for XOAUTH2 (preferred when set)
	// AuthMechanism forces one mechanism ("PLAIN", "LOGIN", "CRAM-MD5",
	// "XOAUTH2") instead of the strongest offered.
	AuthMechanism string
	// AllowInsecureAuth permits credentials over a connection without TLS.
	AllowInsecureAuth bool

	Timeouts      Timeouts
	MaxLineLength int // reply line bound (default DefaultMaxLineLength)
	MaxReplyLines int // reply line count bound (default DefaultMaxReplyLines)
	ChunkSize     int // BDAT chunk size (default DefaultChunkSize)

	DisablePipelining bool // never pipeline, even when offered
	DisableChunking   bool // use DATA even when CHUNKING is offered

	// Transcript, when set, sees every line sent and received, with
	// credentials replaced by *** and message bodies summarised.
	Transcript Transcript

	// Dialer makes the TCP connection (default: a net.Dialer).
	Dialer interface {
		DialContext(ctx context.Context, network, addr string) (net.Conn, error)
	}
}

func (o *Options) withDefaults() Options {
	var c Options
	if o != nil {
		c = *o
	}
	if c.LocalName == "" {
		c.LocalName = "localhost"
	}
	if c.MaxLineLength <= 0 {
		c.MaxLineLength = DefaultMaxLineLength
	}
	if c.MaxReplyLines <= 0 {
		c.MaxReplyLines = DefaultMaxReplyLines
	}
	if c.ChunkSize <= 0 {
		c.ChunkSize = DefaultChunkSize
	}
	if c.StartTLS == TLSDefault {
		c.StartTLS = TLSOpportunistic
		if c.hasCredentials() {
			c.StartTLS = TLSRequired
		}
	}
	c.Timeouts = c.Timeouts.withDefaults()
	if c.Dialer == nil {
		c.Dialer = &net.Dialer{}
	}
	return c
}

func (o *Options) hasCredentials() bool { return o.Username != "" || o.OAuthToken != "" }
