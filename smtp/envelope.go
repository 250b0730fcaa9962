package smtp

import (
	"errors"
	"fmt"
	"net"
	"strings"
)

// DSNReturn is the RET parameter of MAIL FROM (RFC 3461).
type DSNReturn string

// DSN RET values.
const (
	DSNReturnFull    DSNReturn = "FULL"
	DSNReturnHeaders DSNReturn = "HDRS"
)

// Envelope is the SMTP envelope of one message.
type Envelope struct {
	From       string   // reverse path; "" for the null sender <>
	Recipients []string // forward paths
	Size       int64    // message size in octets if known (0: unknown)
	UTF8       bool     // addresses or headers need SMTPUTF8 (refused locally, 553 5.6.7, if not offered)
	// EightBit marks an 8-bit MIME body: BODY=8BITMIME when the server
	// offers 8BITMIME; otherwise SendOptions.Downgrade converts it, or
	// the send is refused locally (554 5.6.3).
	EightBit bool

	// DSN parameters, sent only when the server offers DSN.
	DSNReturn DSNReturn // RET=FULL|HDRS
	EnvID     string    // ENVID, xtext-encoded when sent
	Notify    []string  // NOTIFY for every recipient, e.g. ["FAILURE","DELAY"] or ["NEVER"]
	// ORcpt gives each recipient's original address (ORCPT=rfc822;...),
	// by index in Recipients; may be shorter or nil.
	ORcpt []string
}

// RecipientResult is the outcome for one recipient.
type RecipientResult struct {
	Address string
	// Err is nil when the server accepted the message for this recipient
	// (RCPT and the final data reply both 2xx). Otherwise an *Error (the
	// RCPT reply, or the MAIL or final data reply that applied to it) or
	// a *ConnError (the connection failed before it was acknowledged:
	// defer it).
	Err error
	// Reply is the RCPT reply, nil if none was read.
	Reply *Reply
}

// SendResult is the outcome of one transaction.
type SendResult struct {
	Recipients []RecipientResult // one per envelope recipient, in order
	Mail       *Reply            // the MAIL FROM reply, nil if none was read
	Data       *Reply            // the final reply after the body, nil if none was read
	BodySize   int64             // octets of body sent (after normalisation)

	// Server is the host name the session was dialled for (the name TLS
	// verifies); RemoteAddr is the address connected to. Together they
	// name the relay in a log line: "mx1.example.com[192.0.2.1]:25".
	// Empty and nil when no connection was made.
	Server     string
	RemoteAddr net.Addr
	// TLS reports an encrypted session; TLSVerified that the server's
	// certificate also verified for Server against the trusted roots
	// (opportunistic TLS and tls_verify=false go on without that).
	TLS, TLSVerified bool
	// Downgraded reports that the 8-bit body was converted by
	// SendOptions.Downgrade for a server without 8BITMIME.
	Downgraded bool
}

// Accepted returns the addresses the message was delivered to.
func (r *SendResult) Accepted() []string {
	var out []string
	for _, rr := range r.Recipients {
		if rr.Err == nil {
			out = append(out, rr.Address)
		}
	}
	return out
}

// mailCommand builds MAIL FROM with the parameters the server supports.
// A downgraded body goes without SIZE (its converted size is not known
// in advance) and without BODY (it is 7-bit now).
func (c *Client) mailCommand(env *Envelope, downgraded bool) (string, error) {
	if err := checkPath(env.From); err != nil {
		return "", &Error{Command: "MAIL FROM", Code: 501, EnhancedCode: EnhancedCode{5, 1, 7},
			Message: fmt.Sprintf("invalid sender address %q: %v", env.From, err), Local: true}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "MAIL FROM:<%s>", env.From)
	if ok, _ := c.Extension("SIZE"); ok && env.Size > 0 && !downgraded {
		fmt.Fprintf(&b, " SIZE=%d", env.Size)
	}
	if ok, _ := c.Extension("8BITMIME"); ok && env.EightBit && !downgraded {
		b.WriteString(" BODY=8BITMIME")
	}
	if env.UTF8 {
		if ok, _ := c.Extension("SMTPUTF8"); !ok {
			return "", &Error{Command: "MAIL FROM:<" + env.From + ">", Code: 553, EnhancedCode: EnhancedCode{5, 6, 7},
				Message: "the message needs SMTPUTF8; the server does not offer it", Local: true}
		}
		b.WriteString(" SMTPUTF8")
	}
	if ok, _ := c.Extension("DSN"); ok {
		if env.DSNReturn != "" {
			b.WriteString(" RET=" + string(env.DSNReturn))
		}
		if env.EnvID != "" {
			b.WriteString(" ENVID=" + xtext(env.EnvID))
		}
	}
	return b.String(), nil
}

// checkPath refuses an address that would not stay inside the angle
// brackets of MAIL FROM:<…> or RCPT TO:<…>: a line break or NUL could
// inject commands, and '<', '>' or a space outside a quoted local part
// could end the path early and add ESMTP parameters (NOTIFY=NEVER…).
// It is a defence in depth: the message package quotes what needs it.
func checkPath(addr string) error {
	if strings.ContainsAny(addr, "\r\n\x00") {
		return errors.New("contains CR, LF or NUL")
	}
	if strings.ContainsAny(addr, "<>") {
		return errors.New("contains '<' or '>'")
	}
	rest := addr
	if strings.HasPrefix(addr, `"`) {
		// Skip the quoted local part: spaces are allowed inside it.
		i := 1
		for ; i < len(addr) && addr[i] != '"'; i++ {
			if addr[i] == '\\' {
				i++
			}
		}
		if i >= len(addr) {
			return errors.New("unterminated quoted local part")
		}
		rest = addr[i+1:]
	}
	for i := 0; i < len(rest); i++ {
		if c := rest[i]; c <= ' ' || c == 0x7f {
			return errors.New("contains a space or control character outside a quoted local part")
		}
	}
	return nil
}

// rcptError is the local refusal of recipient addr, or nil.
func rcptError(addr string) *Error {
	if err := checkPath(addr); err != nil {
		return &Error{Command: "RCPT TO", Code: 501, EnhancedCode: EnhancedCode{5, 1, 3},
			Message: fmt.Sprintf("invalid recipient address %q: %v", addr, err), Local: true}
	}
	return nil
}

// rcptCommand builds RCPT TO for recipient i.
func (c *Client) rcptCommand(env *Envelope, i int) string {
	s := "RCPT TO:<" + env.Recipients[i] + ">"
	if ok, _ := c.Extension("DSN"); ok {
		if notify := notifyParam(env.Notify); notify != "" {
			s += " NOTIFY=" + notify
		}
		if i < len(env.ORcpt) && env.ORcpt[i] != "" {
			s += " ORCPT=rfc822;" + xtext(env.ORcpt[i])
		}
	}
	return s
}

// xtext encodes s as RFC 3461 xtext.
func xtext(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch < '!' || ch > '~' || ch == '+' || ch == '=' {
			fmt.Fprintf(&b, "+%02X", ch)
			continue
		}
		b.WriteByte(ch)
	}
	return b.String()
}

// notifyParam joins the RFC 3461 NOTIFY keywords of ns, dropping anything
// else, so a caller's value can never add parameters to the RCPT line.
func notifyParam(ns []string) string {
	var keep []string
	for _, n := range ns {
		switch k := strings.ToUpper(n); k {
		case "SUCCESS", "FAILURE", "DELAY", "NEVER":
			keep = append(keep, k)
		}
	}
	return strings.Join(keep, ",")
}
