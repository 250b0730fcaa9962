package smtp

import (
	"context"
	"net"
	"sync/atomic"
	"time"
)

// deadlineConn sets a fresh deadline before every read and write: the
// current operation's timeout, capped by the bound context's deadline.
// Cancelling the bound context makes pending and later I/O fail at once.
type deadlineConn struct {
	net.Conn
	timeout   time.Duration
	ctxDead   time.Time
	cancelled atomic.Bool
}

func (d *deadlineConn) arm() error {
	dl := time.Now().Add(d.timeout)
	if !d.ctxDead.IsZero() && d.ctxDead.Before(dl) {
		dl = d.ctxDead
	}
	if err := d.Conn.SetDeadline(dl); err != nil {
		return err
	}
	// Checked after setting, so a concurrent cancel always wins.
	if d.cancelled.Load() {
		d.Conn.SetDeadline(time.Unix(1, 0))
		return context.Canceled
	}
	return nil
}

// Read reads with a fresh deadline.
func (d *deadlineConn) Read(p []byte) (int, error) {
	if err := d.arm(); err != nil {
		return 0, err
	}
	return d.Conn.Read(p)
}

// Write writes with a fresh deadline.
func (d *deadlineConn) Write(p []byte) (int, error) {
	if err := d.arm(); err != nil {
		return 0, err
	}
	return d.Conn.Write(p)
}

// binding is a connection tied to a context; stop unties it.
type binding struct {
	d          *deadlineConn
	unregister func() bool
}

// bind ties the connection to ctx until stop is called. A context that
// can never be cancelled costs no allocation.
func (d *deadlineConn) bind(ctx context.Context) binding {
	d.ctxDead, _ = ctx.Deadline()
	d.cancelled.Store(false)
	b := binding{d: d}
	if ctx.Done() != nil {
		b.unregister = context.AfterFunc(ctx, func() {
			d.cancelled.Store(true)
			d.Conn.SetDeadline(time.Unix(1, 0))
		})
	}
	return b
}

// stop unties the connection from the context bind was given.
func (b binding) stop() {
	if b.unregister != nil {
		b.unregister()
	}
	b.d.ctxDead = time.Time{}
}
