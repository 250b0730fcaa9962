//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package smtp

import (
	"errors"
	"syscall"
)

// idlePeek is the state of the idle check: a one-byte peek buffer and
// the result of the last peek, kept in the Client so that a check
// allocates nothing.
type idlePeek struct {
	buf [1]byte
	n   int
	err error
	fn  func(fd uintptr) bool
}

// peerGone reports whether an idle connection can no longer carry a
// transaction: the server closed it (a readable EOF or a reset) or sent
// something unasked (a 421 before hanging up, or garbage). It costs one
// non-blocking recv with MSG_PEEK, no round trip. On a connection whose
// socket is not reachable (a wrapped net.Conn) only buffered bytes count.
func (c *Client) peerGone() bool {
	if c.r.Buffered() > 0 {
		return true
	}
	if c.rc == nil {
		return false
	}
	p := &c.peek
	if p.fn == nil {
		p.fn = func(fd uintptr) bool {
			p.n, _, p.err = syscall.Recvfrom(int(fd), p.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			return true // never wait for readiness: one look is the check
		}
	}
	if err := c.rc.Read(p.fn); err != nil {
		return true
	}
	switch {
	case errors.Is(p.err, syscall.EAGAIN), errors.Is(p.err, syscall.EWOULDBLOCK), errors.Is(p.err, syscall.EINTR):
		return false // nothing to read: alive as far as we can tell
	case p.err != nil:
		return true // reset, or worse
	}
	return true // p.n == 0 is EOF; p.n > 0 are bytes nobody asked for
}
