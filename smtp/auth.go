package smtp

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// mechanism is one SASL mechanism: an optional initial response, then a
// response to each 334 challenge (already base64-decoded).
type mechanism struct {
	name    string
	initial func() ([]byte, bool)
	next    func(challenge []byte) ([]byte, error)
}

// Password mechanisms in order of preference. Inside TLS the password is
// safe on the wire, so PLAIN comes first: CRAM-MD5 obliges the server to
// keep the password in the clear and adds nothing. Outside TLS only
// CRAM-MD5 keeps the password off the wire; PLAIN and LOGIN follow, and
// only with Options.AllowInsecureAuth.
var (
	mechPreferenceTLS   = []string{"PLAIN", "LOGIN", "CRAM-MD5"}
	mechPreferencePlain = []string{"CRAM-MD5", "PLAIN", "LOGIN"}
)

// authMechanisms are the SASL mechanisms Options.AuthMechanism can force.
var authMechanisms = []string{"PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2"}

// revealsSecret reports whether mechanism name sends the password or
// token itself, which outside TLS needs Options.AllowInsecureAuth.
func revealsSecret(name string) bool { return name != "CRAM-MD5" }

func (c *Client) newMechanism(name string) (*mechanism, error) {
	user, pass := c.opts.Username, c.opts.Password
	switch name {
	case "PLAIN":
		sent := false
		return &mechanism{name: name,
			initial: func() ([]byte, bool) { return []byte("\x00" + user + "\x00" + pass), true },
			next: func([]byte) ([]byte, error) {
				// A server that ignored the initial response asks again, once.
				if sent {
					return nil, errors.New("unexpected PLAIN challenge")
				}
				sent = true
				return []byte("\x00" + user + "\x00" + pass), nil
			},
		}, nil
	case "LOGIN":
		step := 0
		return &mechanism{name: name,
			initial: func() ([]byte, bool) { return nil, false },
			next: func([]byte) ([]byte, error) {
				// The prompt text varies between servers; only the order counts.
				step++
				switch step {
				case 1:
					return []byte(user), nil
				case 2:
					return []byte(pass), nil
				}
				return nil, errors.New("unexpected LOGIN challenge")
			},
		}, nil
	case "CRAM-MD5":
		return &mechanism{name: name,
			initial: func() ([]byte, bool) { return nil, false },
			next: func(ch []byte) ([]byte, error) {
				m := hmac.New(md5.New, []byte(pass))
				m.Write(ch)
				return []byte(user + " " + hex.EncodeToString(m.Sum(nil))), nil
			},
		}, nil
	case "XOAUTH2":
		tok := c.opts.OAuthToken
		return &mechanism{name: name,
			initial: func() ([]byte, bool) {
				return []byte("user=" + user + "\x01auth=Bearer " + tok + "\x01\x01"), true
			},
			// A 334 carries a JSON error; an empty response ends the exchange.
			next: func([]byte) ([]byte, error) { return []byte{}, nil },
		}, nil
	}
	return nil, fmt.Errorf("unsupported AUTH mechanism %q", name)
}

// chooseMechanism picks the forced mechanism, XOAUTH2 when a token is
// given, or the most suitable password mechanism the server offers.
func (c *Client) chooseMechanism() (string, error) {
	if c.opts.AuthMechanism != "" {
		return strings.ToUpper(c.opts.AuthMechanism), nil
	}
	params, ok := c.ext["AUTH"]
	if !ok {
		return "", errors.New("the server does not offer AUTH")
	}
	offered := strings.Fields(strings.ToUpper(params))
	if c.opts.OAuthToken != "" {
		if slices.Contains(offered, "XOAUTH2") {
			return "XOAUTH2", nil
		}
		return "", fmt.Errorf("the server does not offer XOAUTH2 (offers %s)", params)
	}
	prefs := mechPreferenceTLS
	if !c.isTLS {
		prefs = mechPreferencePlain
	}
	for _, m := range prefs {
		if slices.Contains(offered, m) {
			return m, nil
		}
	}
	return "", fmt.Errorf("the server offers no supported AUTH mechanism (offers %s)", params)
}

// auth authenticates, refusing to send a password or token in clear
// text unless Options.AllowInsecureAuth is set (CRAM-MD5 sends neither).
// Local refusals are temporary (454 4.7.0): they come from configuration,
// which can be fixed, so mail waiting on them is deferred rather than
// failed.
func (c *Client) auth() error {
	name, err := c.chooseMechanism()
	if err != nil {
		return &Error{Command: "AUTH", Code: 454, EnhancedCode: EnhancedCode{4, 7, 0}, Message: err.Error(), Local: true}
	}
	if !c.isTLS && !c.opts.AllowInsecureAuth && revealsSecret(name) {
		msg := "refusing to send credentials without TLS"
		if c.opts.AuthMechanism == "" && c.opts.OAuthToken == "" {
			msg += " (CRAM-MD5, which would not reveal the password, is not offered)"
		}
		return &Error{Command: "AUTH " + name, Code: 454, EnhancedCode: EnhancedCode{4, 7, 0}, Message: msg, Local: true}
	}
	m, err := c.newMechanism(name)
	if err != nil {
		return &Error{Command: "AUTH", Code: 454, EnhancedCode: EnhancedCode{4, 7, 0}, Message: err.Error(), Local: true}
	}
	return c.runAuth(m)
}

// runAuth drives the exchange: AUTH line, then one response per 334.
func (c *Client) runAuth(m *mechanism) error {
	verb := "AUTH " + m.name
	line, shown := verb, verb
	if ir, ok := m.initial(); ok {
		enc := base64.StdEncoding.EncodeToString(ir)
		if enc == "" {
			enc = "="
		}
		line, shown = verb+" "+enc, verb+" "+redacted
	}
	for i := 0; ; i++ {
		if err := c.writeLine(line, shown); err != nil {
			return c.fail(verb, err)
		}
		if err := c.flush(verb, c.opts.Timeouts.Command); err != nil {
			return err
		}
		rep, err := c.readReplyTimeout(verb, c.opts.Timeouts.Command)
		if err != nil {
			return err
		}
		if rep.Code == 235 || rep.Code/100 == 2 {
			return nil
		}
		if rep.Code != 334 || i >= 8 {
			return replyError(verb, rep)
		}
		ch, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rep.Message()))
		if err != nil {
			ch = []byte(rep.Message())
		}
		resp, err := m.next(ch)
		if err != nil {
			c.writeLine("*", "*") // cancel the exchange (RFC 4954)
			c.flush(verb, c.opts.Timeouts.Command)
			c.readReplyTimeout(verb, c.opts.Timeouts.Command)
			return &Error{Command: verb, Code: 501, Message: err.Error(), Local: true}
		}
		line, shown = base64.StdEncoding.EncodeToString(resp), redacted
	}
}
