package submission

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/outbox-mail/outbox/internal/proxyproto"
)

// trackingListener admits every accepted connection (see admit) and wraps
// it in a trackedConn, so the server can enforce its limits, find idle
// connections at shutdown and refresh read deadlines.
type trackingListener struct {
	net.Listener
	srv *Server
}

// Accept returns the next admitted connection; refused ones are answered
// and closed here. A temporary failure (out of file descriptors) is
// retried with a backoff and summarised in the log instead of ending
// Serve or logging every attempt. A connection accepted while draining is
// closed at once (go-smtp then ends its handler on the first read).
func (l *trackingListener) Accept() (net.Conn, error) {
	var backoff time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if !temporary(err) || l.srv.draining.Load() {
				return nil, err
			}
			l.srv.events.note("not accepted: " + err.Error())
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		tc := l.srv.admit(c)
		if tc == nil {
			continue
		}
		if l.srv.draining.Load() {
			tc.closeIfIdle()
		}
		return tc, nil
	}
}

// temporary reports an accept error worth retrying.
func temporary(err error) bool {
	if errors.Is(err, net.ErrClosed) {
		return false
	}
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED} {
		if errors.Is(err, e) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// closeFlushTimeout bounds sending the last replies when a connection
// closes.
const closeFlushTimeout = 5 * time.Second

// cutReason says why a connection was cut, in the 421 reply it gets.
type cutReason int

const (
	notCut cutReason = iota
	cutSession
	cutMail
	cutRate
	cutEvicted
	cutProxy
)

func (r cutReason) reply() string {
	switch r {
	case cutSession:
		return "421 4.4.2 Session time limit reached, closing connection"
	case cutMail:
		return "421 4.4.2 No transaction started in time, closing connection"
	case cutRate:
		return "421 4.4.2 Data arriving too slowly, closing connection"
	case cutEvicted:
		return "421 4.7.0 Too busy, try again later"
	}
	return ""
}

func (r cutReason) String() string {
	return [...]string{"", "session time limit", "no MAIL in time", "data rate too low", "evicted", "bad PROXY header"}[r]
}

// errCut is what reads return once a connection has been cut: it wraps
// net.ErrClosed, so go-smtp ends the session quietly, and it is not
// io.EOF, so a BDAT chunk cut short is never taken for a whole one.
var errCut = fmt.Errorf("submission: connection cut: %w", net.ErrClosed)

// trackedConn is one client connection. busy is true from MAIL until the
// transaction's reply has been written (the session's Reset), the window in
// which closing it could cost the client an acknowledgement.
//
// Replies are buffered and sent when the server next waits for input (or
// closes): go-smtp writes each reply with its own system call, and a
// pipelining client (RFC 2920) then gets its MAIL, RCPT and final replies
// in one segment instead of three.
//
// Every read sets the deadline that binds first: the idle timeout, the
// session's end, the first MAIL's deadline, or the least time the
// transaction's bytes so far may take at the minimum data rate. A cut
// other than idleness is answered here with its own 421 and closes the
// socket; idleness is left to go-smtp's "421 4.4.2 Idle timeout".
type trackedConn struct {
	net.Conn
	srv     *Server
	start   time.Time
	proxied bool // the peer is a trusted proxy: a PROXY header comes first

	// Set by the first Read (the PROXY header), read-only after.
	started      bool
	remote       net.Addr // the client's addresses from the PROXY header
	local        net.Addr
	noClientAddr bool // a PROXY LOCAL/UNKNOWN header: never loopback
	ipKey        netip.Prefix
	counted      bool

	wmu sync.Mutex
	w   *bufio.Writer

	mu       sync.Mutex
	busy     bool
	closed   bool
	top      *tls.Conn // the TLS layer over this connection, once known
	authed   bool
	mailSeen bool
	txStart  time.Time // the transaction's start, while busy
	txBytes  int64     // bytes read since txStart
	evicted  bool
	cut      cutReason
}

func newTrackedConn(c net.Conn, s *Server) *trackedConn {
	tc := &trackedConn{Conn: c, srv: s, start: time.Now()}
	tc.w = bufio.NewWriterSize(c, 4096)
	if len(s.cfg.ProxyProtocol) > 0 {
		if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
			if ip, ok := netip.AddrFromSlice(ta.IP); ok {
				ip = ip.Unmap()
				tc.proxied = slices.ContainsFunc(s.cfg.ProxyProtocol, func(p netip.Prefix) bool { return p.Contains(ip) })
			}
		}
	}
	return tc
}

// RemoteAddr is the client's address: from the PROXY header when there is
// one.
func (c *trackedConn) RemoteAddr() net.Addr {
	if c.remote != nil {
		return c.remote
	}
	return c.Conn.RemoteAddr()
}

// LocalAddr is the address the client connected to: from the PROXY header
// when there is one.
func (c *trackedConn) LocalAddr() net.Addr {
	if c.local != nil {
		return c.local
	}
	return c.Conn.LocalAddr()
}

// Read sets the binding deadline and reads; see trackedConn.
func (c *trackedConn) Read(p []byte) (int, error) {
	if !c.started {
		if err := c.begin1(); err != nil {
			return 0, err
		}
	}
	if err := c.flush(); err != nil {
		return 0, err
	}
	c.mu.Lock()
	if c.cut != notCut || c.closed {
		c.mu.Unlock()
		return 0, errCut
	}
	dl, why := c.deadline(time.Now())
	err := c.Conn.SetReadDeadline(dl)
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.txBytes += int64(n)
	if c.evicted {
		why = cutEvicted
	}
	c.mu.Unlock()
	var ne net.Error
	if err != nil && errors.As(err, &ne) && ne.Timeout() && why != notCut {
		c.cutOff(why)
		return n, errCut
	}
	return n, err
}

// deadline returns the read deadline that binds first and the cut it
// stands for (notCut: the idle timeout). c.mu is held.
func (c *trackedConn) deadline(now time.Time) (time.Time, cutReason) {
	cfg := &c.srv.cfg
	if c.evicted {
		return now, cutEvicted
	}
	dl, why := now.Add(cfg.ReadTimeout), notCut
	if t := c.start.Add(cfg.SessionTimeout); t.Before(dl) {
		dl, why = t, cutSession
	}
	if !c.mailSeen {
		if t := c.start.Add(cfg.MailTimeout); t.Before(dl) {
			dl, why = t, cutMail
		}
	}
	if c.busy && cfg.MinDataRate > 0 {
		allowed := cfg.dataGrace + time.Duration(float64(c.txBytes)/float64(cfg.MinDataRate)*float64(time.Second))
		if t := c.txStart.Add(allowed); t.Before(dl) {
			dl, why = t, cutRate
		}
	}
	return dl, why
}

// begin1 runs before the first read: on a connection from a trusted proxy
// it reads the PROXY header (before the greeting is sent) and then counts
// the real client against its address's cap.
func (c *trackedConn) begin1() error {
	c.started = true
	if !c.proxied {
		return nil
	}
	c.Conn.SetReadDeadline(time.Now().Add(proxyHeaderTimeout))
	h, err := proxyproto.Read(c.Conn)
	if err != nil {
		c.srv.log.Debug("submission: bad PROXY header", "proxy", c.Conn.RemoteAddr().String(), "err", err)
		c.dropReplies()
		c.cutOff(cutProxy)
		return errCut
	}
	if h.Local {
		c.noClientAddr = true
	} else {
		c.remote = net.TCPAddrFromAddrPort(h.Source)
		c.local = net.TCPAddrFromAddrPort(h.Destination)
	}
	if !c.srv.admitAddr(c) {
		c.dropReplies()
		c.srv.refuse(c.Conn, "too many from one address", "421 4.7.0 Too many connections from your address, try again later")
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		return errCut
	}
	return nil
}

// dropReplies forgets the buffered greeting of a connection refused
// before it was sent.
func (c *trackedConn) dropReplies() {
	c.wmu.Lock()
	c.w.Reset(c.Conn)
	c.wmu.Unlock()
}

// cutOff answers the client with why's 421, through TLS when the session
// runs over it, and closes the socket.
func (c *trackedConn) cutOff(why cutReason) {
	c.mu.Lock()
	if c.cut != notCut || c.closed {
		c.mu.Unlock()
		return
	}
	c.cut = why
	top := c.top
	c.mu.Unlock()
	c.srv.events.note("cut: " + why.String())
	c.srv.rejected(why.label())
	c.srv.log.Debug("submission: connection cut", "remote", c.RemoteAddr().String(), "reason", why.String())
	if reply := why.reply(); reply != "" {
		c.Conn.SetWriteDeadline(time.Now().Add(refuseTimeout))
		if top != nil {
			top.Write([]byte(reply + "\r\n"))
		} else {
			c.Write([]byte(reply + "\r\n"))
		}
		c.flush()
	}
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.Conn.Close()
}

// evict makes the connection end at its next (or current) read with
// "421 4.7.0 Too busy". s.mu is held by the caller.
func (c *trackedConn) evict() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.evicted = true
	c.Conn.SetReadDeadline(time.Now())
}

// evictable reports a connection that may be closed to make room: it has
// not authenticated nor started a transaction and is not brand new.
func (c *trackedConn) evictable(now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.authed && !c.mailSeen && !c.evicted && !c.closed && c.cut == notCut &&
		now.Sub(c.start) >= evictMinAge
}

// setTop records the TLS layer over the connection, so a cut's reply
// goes through it.
func (c *trackedConn) setTop(t *tls.Conn) {
	c.mu.Lock()
	c.top = t
	c.mu.Unlock()
}

// authenticated marks the client as authenticated: it is no longer
// evictable.
func (c *trackedConn) authenticated() {
	c.mu.Lock()
	c.authed = true
	c.mu.Unlock()
}

// Write buffers a reply until the next Read or Close.
func (c *trackedConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.w.Write(p)
}

// flush sends the buffered replies; the write deadline go-smtp set for
// them bounds it.
func (c *trackedConn) flush() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.w.Flush()
}

// Close sends what is buffered (go-smtp's 221 reply to QUIT, TLS's
// close_notify), closes the connection and forgets it. crypto/tls has set
// the write deadline to now before closing, so a short one is set again.
func (c *trackedConn) Close() error {
	c.Conn.SetWriteDeadline(time.Now().Add(closeFlushTimeout))
	c.flush()
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.release()
	return c.Conn.Close()
}

// begin marks a transaction started; false means the connection is being
// closed for shutdown and no transaction may start.
func (c *trackedConn) begin() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.busy, c.mailSeen = true, true
	c.txStart, c.txBytes = time.Now(), 0
	return true
}

// end marks the transaction over; while draining, the connection is then
// closed, its reply already written.
func (c *trackedConn) end() {
	c.mu.Lock()
	c.busy = false
	c.mu.Unlock()
	if c.srv.draining.Load() {
		c.closeIfIdle()
	}
}

// closeIfIdle closes the socket unless a transaction is under way. It
// closes the raw connection without unregistering: go-smtp's handler sees
// the closed socket on its next read and cleans up through Close.
func (c *trackedConn) closeIfIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.busy || c.closed {
		return
	}
	c.closed = true
	c.flush() // the reply that ended the transaction
	c.Conn.Close()
}

// closeIdle closes every connection not in a transaction.
func (s *Server) closeIdle() {
	s.mu.Lock()
	conns := make([]*trackedConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.closeIfIdle()
	}
}

// tracked finds the trackedConn under c, looking through STARTTLS.
func tracked(c net.Conn) *trackedConn {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	t, _ := c.(*trackedConn)
	return t
}
