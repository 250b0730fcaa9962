package delivery

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/outbox-mail/outbox/route"
	"github.com/outbox-mail/outbox/smtp"
)

// MXResolver answers what direct delivery asks of the DNS; a
// *route.Resolver does.
type MXResolver interface {
	// MX returns the domain's MX set, or a *route.Error.
	MX(ctx context.Context, domain string) (*route.MXSet, error)
	// Addrs returns a host's addresses, or an error.
	Addrs(ctx context.Context, host string) ([]netip.Addr, error)
}

// mxTransport delivers to one MX host set over a pool whose connections
// are made by walking the set (RFC 5321 §5.1): hosts in preference order,
// shuffled among equals, each of their addresses, falling back to the
// next on a connection failure or a greeting or handshake refused.
type mxTransport struct {
	name     string
	set      atomic.Pointer[route.MXSet]
	resolver MXResolver
	port     string
	opts     smtp.Options
	pool     *smtp.Pool

	mu             sync.Mutex
	lastHost, last string // the most recent connection, for logs
}

func newMXTransport(set *route.MXSet, r MXResolver, port int, base *smtp.Options, po smtp.PoolOptions) *mxTransport {
	m := &mxTransport{name: "mx:" + set.Primary(), resolver: r, port: strconv.Itoa(port)}
	if base != nil {
		m.opts = *base
	}
	// Opportunistic TLS (RFC 7435): encrypt when offered, without
	// refusing a certificate nobody can verify for an MX host.
	m.opts.ImplicitTLS = false
	m.opts.StartTLS = smtp.TLSOpportunistic
	m.opts.Username, m.opts.Password, m.opts.OAuthToken = "", "", ""
	m.set.Store(set)
	po.Dial = m.dial
	m.pool = smtp.NewPool(&po)
	return m
}

// Route returns "mx:" and the most preferred host.
func (m *mxTransport) Route() string { return m.name }

// Close closes the pooled connections.
func (m *mxTransport) Close() error { return m.pool.Close() }

// dial connects to the first host of the set that takes the session.
func (m *mxTransport) dial(ctx context.Context, tr smtp.Transcript) (*smtp.Client, error) {
	var errs []error
	for _, h := range m.set.Load().Order(rand.IntN) {
		addrs, err := m.resolver.Addrs(ctx, h.Name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, a := range addrs {
			addr := net.JoinHostPort(a.String(), m.port)
			o := m.opts
			o.ServerName = h.Name                                                                                 // what the send result and the log line name
			o.TLSConfig = &tls.Config{ServerName: h.Name, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12} //nolint:gosec // RFC 7435
			c, err := smtp.DialTraced(ctx, addr, &o, tr)
			if err == nil {
				if tr != nil {
					tr(smtp.Sent, connectNote(h.Name, addr))
				}
				m.mu.Lock()
				m.lastHost, m.last = h.Name, addr
				m.mu.Unlock()
				return c, nil
			}
			errs = append(errs, fmt.Errorf("%s[%s]: %w", h.Name, addr, err))
			if ctx.Err() != nil {
				return nil, &smtp.ConnError{Stage: "dial", Err: errors.Join(errs...)}
			}
		}
	}
	if len(errs) == 0 {
		errs = append(errs, errors.New("no MX host"))
	}
	var ce *smtp.ConnError
	if len(errs) == 1 && errors.As(errs[0], &ce) {
		return nil, errs[0]
	}
	return nil, &smtp.ConnError{Stage: "dial", Err: errors.Join(errs...)}
}

// Deliver sends one message to the set's first host that answers.
func (m *mxTransport) Deliver(ctx context.Context, env Envelope, body io.Reader) Outcome {
	out := sendPooled(ctx, m.pool, env, body)
	if out.Server == "" {
		m.mu.Lock()
		out.Server, out.ServerAddr = m.lastHost, m.last
		m.mu.Unlock()
	}
	return out
}
