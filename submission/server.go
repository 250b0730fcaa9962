// Package submission is the SMTP submission listener of outbox: any program
// that speaks SMTP hands it a message and gets "250 OK: queued as <id>" once
// the message is durable in the queue.
//
// It is built on github.com/emersion/go-smtp's server. It is never an open
// relay: a client must authenticate (AUTH PLAIN or LOGIN, only after STARTTLS
// unless the connection is loopback) before MAIL, unless AllowNoAuthOnLoopback
// is set and both ends of the connection are loopback addresses.
package submission

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/outbox-mail/outbox/queue"
)

// Defaults for the zero values of Config.
const (
	DefaultMaxMessageSize = 25 << 20 // 25 MiB
	DefaultMaxRecipients  = 1000
	DefaultReadTimeout    = 5 * time.Minute
	DefaultWriteTimeout   = time.Minute
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

	// isLoopback decides whether a connection counts as loopback; nil means
	// both addresses are loopback IPs. Tests replace it to exercise the
	// non-loopback rules without leaving loopback.
	isLoopback func(local, remote net.Addr) bool
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
}

// New validates cfg, fills in defaults and returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Enqueuer == nil {
		return nil, errors.New("submission: Config.Enqueuer is required")
	}
	if err := withDefaults(&cfg); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, conns: make(map[*trackedConn]struct{})}
	s.ctx, s.cancel = context.WithCancel(context.Background())

	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = cfg.Hostname
	srv.TLSConfig = cfg.TLSConfig
	srv.MaxMessageBytes = cfg.MaxMessageSize
	srv.MaxRecipients = cfg.MaxRecipients
	srv.EnableSMTPUTF8 = true
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
func (s *Server) OpenOnLoopback() bool { return s.cfg.AllowNoAuthOnLoopback }

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
