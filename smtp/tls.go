package smtp

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// tlsConfig is the configuration for one handshake. selfVerify is true
// when the handshake itself does not verify the certificate, so that
// checkPeer must judge it: for opportunistic STARTTLS (which encrypts
// whatever the certificate) and when verification is switched off.
func (c *Client) tlsConfig(opportunistic bool) (cfg *tls.Config, selfVerify bool) {
	cfg = &tls.Config{}
	if c.opts.TLSConfig != nil {
		cfg = c.opts.TLSConfig.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = c.host
	}
	if opportunistic {
		selfVerify = true
		cfg.InsecureSkipVerify = true
	}
	return cfg, selfVerify || cfg.InsecureSkipVerify
}

// tlsHandshake encrypts the connection. opportunistic is set for STARTTLS
// under TLSOpportunistic: an unverifiable certificate is recorded, not
// refused. Otherwise a certificate that does not verify ends the session
// with a temporary local 454 4.7.5 (wrapped in a *ConnError), as Postfix
// defers mail when "server certificate not verified".
func (c *Client) tlsHandshake(opportunistic bool) error {
	c.dc.timeout = c.opts.Timeouts.Dial
	cfg, selfVerify := c.tlsConfig(opportunistic)
	tc := tls.Client(c.dc, cfg)
	if err := tc.Handshake(); err != nil {
		var ve *tls.CertificateVerificationError
		if errors.As(err, &ve) {
			cmd := "STARTTLS"
			if c.opts.ImplicitTLS {
				cmd = "TLS"
			}
			return c.fail("TLS handshake", &Error{Command: cmd, Code: 454, EnhancedCode: EnhancedCode{4, 7, 5},
				Message: "server certificate not verified: " + ve.Err.Error(), Local: true})
		}
		c.tlsFailed = true
		return c.fail("TLS handshake", err)
	}
	c.setConn(tc)
	c.isTLS = true
	st := tc.ConnectionState()
	c.verified = true
	if selfVerify {
		if err := checkPeer(cfg, st); err != nil {
			c.verified = false
			why := "verification is off (tls_verify=false)"
			if opportunistic {
				why = "opportunistic TLS goes on encrypted"
			}
			c.trace(Note, fmt.Sprintf("TLS certificate not verified (%v); %s", err, why))
		}
	}
	if c.verified {
		c.trace(Note, fmt.Sprintf("%s, certificate verified for %s", tls.VersionName(st.Version), cfg.ServerName))
	}
	return nil
}

// checkPeer verifies the peer's chain for cfg.ServerName against
// cfg.RootCAs (the system roots when nil), as the handshake would have.
func checkPeer(cfg *tls.Config, st tls.ConnectionState) error {
	if len(st.PeerCertificates) == 0 {
		return errors.New("no certificate")
	}
	now := time.Now()
	if cfg.Time != nil {
		now = cfg.Time()
	}
	opts := x509.VerifyOptions{Roots: cfg.RootCAs, DNSName: cfg.ServerName, Intermediates: x509.NewCertPool(), CurrentTime: now}
	for _, ic := range st.PeerCertificates[1:] {
		opts.Intermediates.AddCert(ic)
	}
	_, err := st.PeerCertificates[0].Verify(opts)
	return err
}

// maybeStartTLS applies the STARTTLS policy.
func (c *Client) maybeStartTLS() error {
	if c.isTLS || c.opts.StartTLS == TLSOff {
		return nil
	}
	if c.plainOnly {
		c.trace(Note, "not using STARTTLS: the TLS handshake failed on the previous connection")
		return nil
	}
	if _, ok := c.ext["STARTTLS"]; !ok {
		if c.opts.StartTLS == TLSRequired {
			// Temporary, like Postfix's "TLS is required, but was not offered".
			return &Error{Command: "STARTTLS", Code: 454, EnhancedCode: EnhancedCode{4, 7, 0},
				Message: "policy requires STARTTLS; the server does not offer it", Local: true}
		}
		return nil
	}
	rep, err := c.cmd("STARTTLS", c.opts.Timeouts.Command, "STARTTLS")
	if err != nil {
		return err
	}
	if rep.Code != 220 {
		if c.opts.StartTLS == TLSOpportunistic && rep.Code >= 400 && rep.Code < 500 {
			return nil
		}
		return replyError("STARTTLS", rep)
	}
	if err := c.tlsHandshake(c.opts.StartTLS == TLSOpportunistic); err != nil {
		return err
	}
	c.ext = nil // forget what was said in the clear
	return c.hello()
}
