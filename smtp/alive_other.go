//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package smtp

// idlePeek is empty where the socket cannot be peeked at.
type idlePeek struct{}

// peerGone reports whether an idle connection has bytes nobody asked for.
// Where the socket cannot be peeked at, a closed connection is found by
// the pool's redial on the first failed reply instead.
func (c *Client) peerGone() bool { return c.r.Buffered() > 0 }
