package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Connection limits: the default caps, and the file descriptors kept
// free for everything but client connections (the store's files and
// connections, spool and attachment files, outbound SMTP, webhooks).
const (
	defaultMaxConns = 1000
	minReserve      = 256
	// overflowConns is how many connections past --http-max-connections
	// are let in to be answered: /healthz and /readyz normally, anything
	// else 503. Past that, new connections get a bare 503 and are closed.
	overflowConns   = 16
	overflowTimeout = 5 * time.Second
)

// fileLimit raises the soft limit on open files to the hard limit (Go's
// os package already does this at start on Linux; doing it here says so
// and covers other set-ups) and returns the limit in force.
func fileLimit() uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0
	}
	if lim.Cur < lim.Max {
		raised := lim
		raised.Cur = lim.Max
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised) == nil {
			lim = raised
		}
	}
	return lim.Cur
}

// connectionCaps decides the SMTP and HTTP caps under the open-file limit:
// a cap given explicitly must fit with the reserve, or start-up fails;
// defaults are lowered to fit, in proportion.
func connectionCaps(limit uint64, smtpCap, httpCap int, smtpOn bool) (int, int, error) {
	if limit == 0 || limit > 1<<30 {
		limit = 1 << 30
	}
	reserve := max(minReserve, limit/4)
	if limit <= reserve {
		return 0, 0, usagef("the open-file limit is %d, too low to serve anything; raise it (ulimit -n) to at least %d", limit, 2*minReserve)
	}
	budget := int(limit - reserve)
	fixed := 0
	auto := 0
	for _, c := range []struct {
		v  int
		on bool
	}{{smtpCap, smtpOn}, {httpCap, true}} {
		switch {
		case !c.on:
		case c.v > 0:
			fixed += c.v
		default:
			auto++
		}
	}
	if fixed > budget {
		return 0, 0, usagef("--smtp-max-connections and --http-max-connections come to %d, more than the %d connections "+
			"the open-file limit of %d allows with %d kept for the store and delivery; lower them or raise the limit (ulimit -n)",
			fixed, budget, limit, reserve)
	}
	share := defaultMaxConns
	if auto > 0 {
		share = max(1, min(defaultMaxConns, (budget-fixed)/auto))
	}
	if smtpCap == 0 {
		smtpCap = share
	}
	if httpCap == 0 {
		httpCap = share
	}
	return smtpCap, httpCap, nil
}

// overflowKey marks, in a request's context, a connection let in past the
// cap.
type overflowKey struct{}

// limitListener caps the HTTP connections served at once. Past the cap, a
// few more are let in to answer health checks; past those, a new
// connection gets a bare 503 and is closed, so the daemon keeps
// answering /healthz and its existing clients.
type limitListener struct {
	net.Listener
	max      int64
	tls      bool // the connections will speak TLS: no bare 503
	log      *slog.Logger
	active   atomic.Int64
	overflow atomic.Int64
	refused  atomic.Int64
	logOnce  sync.Mutex
	lastLog  time.Time
}

// Accept admits the next connection. Running out of file descriptors is
// retried with a backoff instead of ending Serve.
func (l *limitListener) Accept() (net.Conn, error) {
	var backoff time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if !errors.Is(err, syscall.EMFILE) && !errors.Is(err, syscall.ENFILE) {
				return nil, err
			}
			l.note("accept failed: " + err.Error())
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if l.active.Add(1) <= l.max {
			return &countedConn{Conn: c, n: &l.active}, nil
		}
		l.active.Add(-1)
		if l.overflow.Add(1) <= overflowConns {
			c.SetDeadline(time.Now().Add(overflowTimeout))
			return &countedConn{Conn: c, n: &l.overflow, overflow: true}, nil
		}
		l.overflow.Add(-1)
		l.refused.Add(1)
		l.note("")
		if !l.tls {
			c.SetWriteDeadline(time.Now().Add(time.Second))
			c.Write([]byte("HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain\r\n" +
				"Content-Length: 19\r\nConnection: close\r\n\r\nToo busy, try again"))
		}
		c.Close()
	}
}

// note logs refusals at most once per interval.
func (l *limitListener) note(what string) {
	l.logOnce.Lock()
	defer l.logOnce.Unlock()
	if time.Since(l.lastLog) < 10*time.Second {
		return
	}
	l.lastLog = time.Now()
	if what == "" {
		l.log.Warn("http: connections refused, the connection cap is reached", "refused", l.refused.Swap(0), "max", l.max)
		return
	}
	l.log.Warn("http: " + what)
}

// countedConn gives its slot back when closed.
type countedConn struct {
	net.Conn
	n        *atomic.Int64
	overflow bool
	once     sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.n.Add(-1) })
	return c.Conn.Close()
}

// connContext marks requests on an overflow connection.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = tc.NetConn()
	}
	if cc, ok := c.(*countedConn); ok && cc.overflow {
		return context.WithValue(ctx, overflowKey{}, true)
	}
	return ctx
}

// healthOnlyWhenFull answers anything but the health endpoints with 503
// on a connection let in past the cap.
func healthOnlyWhenFull(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Context().Value(overflowKey{}) != nil && r.URL.Path != "/healthz" && r.URL.Path != "/readyz" {
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Connection", "close")
			http.Error(w, "Too busy, try again.", http.StatusServiceUnavailable)
			return
		}
		if r.Context().Value(overflowKey{}) != nil {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
}
