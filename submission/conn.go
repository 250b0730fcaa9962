package submission

import (
	"bufio"
	"crypto/tls"
	"net"
	"sync"
	"time"
)

// trackingListener wraps every accepted connection in a trackedConn, so the
// server can find idle connections at shutdown and refresh read deadlines.
type trackingListener struct {
	net.Listener
	srv *Server
}

// Accept registers the connection; one accepted while draining is closed
// at once (go-smtp then ends its handler on the first read).
func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, srv: l.srv, readTimeout: l.srv.cfg.ReadTimeout}
	tc.w = bufio.NewWriterSize(c, 4096)
	l.srv.mu.Lock()
	l.srv.conns[tc] = struct{}{}
	l.srv.mu.Unlock()
	if l.srv.draining.Load() {
		tc.closeIfIdle()
	}
	return tc, nil
}

// closeFlushTimeout bounds sending the last replies when a connection
// closes.
const closeFlushTimeout = 5 * time.Second

// trackedConn is one client connection. busy is true from MAIL until the
// transaction's reply has been written (the session's Reset), the window in
// which closing it could cost the client an acknowledgement.
//
// Replies are buffered and sent when the server next waits for input (or
// closes): go-smtp writes each reply with its own system call, and a
// pipelining client (RFC 2920) then gets its MAIL, RCPT and final replies
// in one segment instead of three.
type trackedConn struct {
	net.Conn
	srv         *Server
	readTimeout time.Duration

	wmu sync.Mutex
	w   *bufio.Writer

	mu     sync.Mutex
	busy   bool
	closed bool
}

// Read refreshes the read deadline before every read: go-smtp sets one per
// command, which would otherwise also bound a whole DATA upload.
func (c *trackedConn) Read(p []byte) (int, error) {
	if err := c.flush(); err != nil {
		return 0, err
	}
	if c.readTimeout > 0 {
		if err := c.Conn.SetReadDeadline(time.Now().Add(c.readTimeout)); err != nil {
			return 0, err
		}
	}
	return c.Conn.Read(p)
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
	c.srv.mu.Lock()
	delete(c.srv.conns, c)
	c.srv.mu.Unlock()
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
	c.busy = true
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
