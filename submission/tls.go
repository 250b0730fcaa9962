package submission

import (
	"crypto/tls"

	"github.com/outbox-mail/outbox/internal/tlsfiles"
)

// SelfSignedTLS returns a TLS configuration with a new self-signed ECDSA
// leaf certificate (not a CA) for hosts (DNS names or IP addresses). It is
// meant for loopback use and tests, where clients are told to trust it or
// skip verification; Certificates[0].Leaf holds the parsed certificate so
// a client can add it to its roots. The daemon keeps its self-signed
// certificate in the data directory instead, so clients can pin it.
func SelfSignedTLS(hosts ...string) (*tls.Config, error) {
	cert, err := tlsfiles.SelfSigned(hosts...)
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}
