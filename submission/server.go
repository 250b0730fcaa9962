// Package submission is the SMTP submission listener of outbox: any program
// that speaks SMTP hands it a message and gets "250 OK: queued as <id>" once
// the message is durable in the queue.
//
// It is built on github.com/emersion/go-smtp's server. It is never an open
// relay: a client must authenticate (AUTH PLAIN or LOGIN, only after STARTTLS
// unless the connection is loopback) before MAIL, unless AllowNoAuthOnLoopback
// is set and both ends of the connection are loopback addresses.
//
// It holds against hostile clients: connections are capped globally and per
// client address, a whole session, the wait for the first MAIL and the rate
// of a message transfer have limits, and password guessing is slowed and
// then refused (internal/throttle). Behind a proxy, the PROXY protocol gives
// it the real client address.
package submission

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/outbox-mail/outbox/internal/throttle"
	"github.com/outbox-mail/outbox/queue"
)

// Defaults for the zero values of Config.
const (
	DefaultMaxMessageSize = 25 << 20 // 25 MiB
	DefaultMaxRecipients  = 1000
	DefaultReadTimeout    = 5 * time.Minute
	DefaultWriteTimeout   = time.Minute

	DefaultMaxConnections      = 1000
	DefaultMaxConnectionsPerIP = 50
	DefaultSessionTimeout      = 30 * time.Minute
	DefaultMailTimeout         = 2 * time.Minute
	DefaultMinDataRate         = 1024 // bytes per second
)

// Enqueuer stores an accepted message durably and returns its id;
// *outbox.Client satisfies it. m.Body streams the client's data and must
// not be read after EnqueueRaw returns.
type Enqueuer interface {
	EnqueueRaw(ctx context.Context, m queue.NewMessage) (string, error)
}

// EnqueueFunc adapts a function, such as a queue.Store's Enqueue method, to
// an Enqueuer.
type EnqueueFunc func(ctx context.Context, m queue.NewMessage) (string, error)

// EnqueueRaw calls f.
func (f EnqueueFunc) EnqueueRaw(ctx context.Context, m queue.NewMessage) (string, error) {
	return f(ctx, m)
}

// Config configures a Server. Enqueuer is required.
type Config struct {
	// Enqueuer receives every accepted message.
	Enqueuer Enqueuer
	// Users maps a user name to its password for AUTH PLAIN and LOGIN.
	Users map[string]string
	// TLSConfig is used for STARTTLS; nil means a self-signed certificate
	// for Hostname and the loopback addresses (see SelfSignedTLS).
	TLSConfig *tls.Config
	// AllowNoAuthOnLoopback accepts mail without AUTH on connections whose
	// both ends are loopback addresses. Other connections always need AUTH.
	AllowNoAuthOnLoopback bool
	// MaxMessageSize bounds a message in bytes, advertised in SIZE
	// (default 25 MiB).
	MaxMessageSize int64
	// MaxRecipients bounds the recipients of one message (default 1000).
	MaxRecipients int
	// Hostname names this server in the greeting and in Received headers
	// (default: os.Hostname).
	Hostname string
	// Logger receives connection and submission logs (default
	// slog.Default()). Passwords and AUTH payloads are never logged.
	Logger *slog.Logger
	// ReadTimeout bounds every wait for client data, so it is an idle
	// timeout that a slow but steady upload never hits (default 5m).
	ReadTimeout time.Duration
	// WriteTimeout bounds writing one reply (default 1m).
	WriteTimeout time.Duration

	// MaxConnections bounds the connections served at once (default
	// 1000); keep it below the process's file-descriptor limit. When it is
	// reached, the oldest connection that has neither authenticated nor
	// started a transaction (and is older than a second) is closed to make
	// room; when there is none, the newcomer gets "421 4.7.0" and is closed.
	MaxConnections int
	// MaxConnectionsPerIP bounds the connections of one client address
	// (an IPv6 /64) at once (default 50).
	MaxConnectionsPerIP int
	// SessionTimeout bounds a whole connection (default 30m).
	SessionTimeout time.Duration
	// MailTimeout bounds the time from connecting to the first MAIL
	// command (default 2m), so a client that never authenticates cannot
	// hold a connection for long.
	MailTimeout time.Duration
	// MinDataRate is the least average rate, in bytes per second, at which
	// a transaction's data must arrive once it is 30 seconds old (default
	// 1024): a client below it is cut with "421 4.4.2". Negative: no limit.
	MinDataRate int
	// ProxyProtocol lists the proxies (addresses or networks) whose
	// connections start with a PROXY protocol v1 or v2 header, which gives
	// the real client address. A connection from them without a valid
	// header is closed; other connections must not send one.
	ProxyProtocol []netip.Prefix
	// Senders binds users to the envelope senders they may give in MAIL
	// FROM (RFC 6409 §6.1): patterns where * matches any run of
	// characters, compared without regard to case, such as
	// "*@example.com". A user not listed may use any sender.
	Senders map[string][]string
	// Throttle slows and refuses password guessing; nil means one with
	// the default settings. Share one with the other listeners, so that an
	// address guessing on one is slowed on all.
	Throttle *throttle.Throttle
	// Inbound, when set, takes the mail that comes back to the bounce
	// domain: from anyone, without authentication, for addresses of that
	// domain only (any other recipient still needs AUTH), within its
	// MaxSize. Such mail never enters the queue.
	Inbound Inbound
	// OnReject, if set, hears of every refused connection, command or
	// message, with its reason (RejectBusy, …: a closed set); OnAuthFailure
	// of every failed AUTH (AuthBadCredentials, …). For metrics: they must
	// not block.
	OnReject, OnAuthFailure func(reason string)

	// isLoopback decides whether a connection counts as loopback; nil means
	// both addresses are loopback IPs. Tests replace it to exercise the
	// non-loopback rules without leaving loopback.
	isLoopback func(local, remote net.Addr) bool
	// dataGrace is how long a transaction runs before MinDataRate applies
	// (default 30s); tests shorten it.
	dataGrace time.Duration
}

// Server is an SMTP submission server. Create it with New.
type Server struct {
	cfg    Config
	log    *slog.Logger
	smtp   *smtp.Server
	ctx    context.Context // cancelled by Close: aborts in-flight enqueues
	cancel context.CancelFunc

	draining atomic.Bool
	mu       sync.Mutex
	conns    map[*trackedConn]struct{}
	perIP    map[netip.Prefix]int // live connections per client address
	evicting int                  // connections closed to make room, not yet gone
	events   *eventLog            // refusals and cuts, summarised
	acc      atomic.Pointer[access]
}

// New validates cfg, fills in defaults and returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Enqueuer == nil {
		return nil, errors.New("submission: Config.Enqueuer is required")
	}
	if err := withDefaults(&cfg); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, conns: make(map[*trackedConn]struct{}),
		perIP: make(map[netip.Prefix]int), events: newEventLog(cfg.Logger)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.acc.Store(newAccess(cfg.Users, cfg.Senders, cfg.AllowNoAuthOnLoopback))

	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = cfg.Hostname
	srv.TLSConfig = cfg.TLSConfig
	srv.MaxMessageBytes = cfg.MaxMessageSize
	srv.MaxRecipients = cfg.MaxRecipients
	srv.EnableSMTPUTF8 = true
	// RET, ENVID, NOTIFY and ORCPT are kept with the message and passed
	// on to servers that offer DSN too.
	srv.EnableDSN = true
	// go-smtp decides AUTH-before-TLS for the whole server; we need it per
	// connection (allowed on loopback only), so the server allows it and
	// the session refuses it and hides AUTH where it must not be used.
	srv.AllowInsecureAuth = true
	// Read deadlines are refreshed per read by trackedConn instead, so a
	// large DATA is not cut off by a deadline set at the DATA command.
	srv.ReadTimeout = 0
	srv.WriteTimeout = cfg.WriteTimeout
	srv.ErrorLog = errorLog{cfg.Logger}
	s.smtp = srv
	return s, nil
}

func withDefaults(cfg *Config) error {
	if cfg.MaxMessageSize <= 0 {
		cfg.MaxMessageSize = DefaultMaxMessageSize
	}
	if cfg.MaxRecipients <= 0 {
		cfg.MaxRecipients = DefaultMaxRecipients
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := limitDefaults(cfg); err != nil {
		return err
	}
	if cfg.Hostname == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "localhost"
		}
		cfg.Hostname = h
	}
	cfg.Hostname = sanitizeDomain(cfg.Hostname)
	if cfg.isLoopback == nil {
		cfg.isLoopback = loopbackPair
	}
	if cfg.TLSConfig == nil {
		tc, err := SelfSignedTLS(cfg.Hostname, "localhost", "127.0.0.1", "::1")
		if err != nil {
			return fmt.Errorf("submission: self-signed certificate: %w", err)
		}
		cfg.TLSConfig = tc
	}
	return nil
}

// OpenOnLoopback reports whether loopback clients may submit without
// authentication, so the daemon can say so at start-up.
func (s *Server) OpenOnLoopback() bool { return s.access().open }

// Serve accepts connections on l until Shutdown or Close; it then returns
// nil.
func (s *Server) Serve(l net.Listener) error {
	return s.smtp.Serve(&trackingListener{Listener: l, srv: s})
}

// Shutdown stops accepting connections, closes idle ones at once and each
// busy one as soon as its message transaction ends, and waits for them to
// finish until ctx is done; then it closes what is left, as Close does.
// A transaction cut short was never acknowledged, so the client keeps it.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	done := make(chan error, 1)
	go func() { done <- s.smtp.Shutdown(ctx) }()
	s.closeIdle()
	select {
	case err := <-done:
		if ctx.Err() != nil {
			s.Close()
			return ctx.Err()
		}
		s.cancel()
		return ignoreClosed(err)
	case <-ctx.Done():
		s.Close()
		return ctx.Err()
	}
}

// Close closes the listeners and every connection at once; an enqueue in
// progress is abandoned and its client gets no acknowledgement.
func (s *Server) Close() error {
	s.draining.Store(true)
	s.cancel()
	err := s.smtp.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Conn.Close()
	}
	s.mu.Unlock()
	return ignoreClosed(err)
}

func ignoreClosed(err error) error {
	if errors.Is(err, smtp.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// loopbackPair is the default loopback decision: both ends of the
// connection must be loopback IPs. Checking the local end too means a
// wildcard listener does not treat a peer as local just because of the
// address it claims.
func loopbackPair(local, remote net.Addr) bool {
	return isLoopbackAddr(local) && isLoopbackAddr(remote)
}

func isLoopbackAddr(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// errorLog routes go-smtp's internal error reports to slog.
type errorLog struct{ l *slog.Logger }

func (e errorLog) Printf(format string, v ...any) {
	e.l.Warn("submission: " + fmt.Sprintf(format, v...))
}

func (e errorLog) Println(v ...any) { e.l.Warn("submission: " + fmt.Sprint(v...)) }
