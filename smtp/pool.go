package smtp

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"
)

// ErrPoolClosed is returned by Pool.Send after Close.
var ErrPoolClosed = errors.New("smtp: pool is closed")

// PoolOptions configures a Pool: one route (address, TLS mode and
// credentials) and the limits of its connections.
type PoolOptions struct {
	Addr        string        // "host:port"
	Options     *Options      // client options: TLS, credentials, timeouts
	MaxConns    int           // connections open at once (default 4)
	IdleTimeout time.Duration // close a connection idle this long (default 30s)
	MaxAge      time.Duration // do not reuse a connection older than this (default 5m)
	MaxMessages int           // messages per connection (default 1000; MaxAge bounds it in time, as Postfix's smtp_connection_reuse_time_limit does)
	// ProbeAfter: a connection idle longer than this gets a NOOP before
	// reuse (default 2s).
	ProbeAfter time.Duration
	// Dial, when set, makes new connections instead of dialling Addr with
	// Options: a destination with several hosts (an MX set) walks them in
	// its own order. tr must be installed from the first byte (DialTraced).
	Dial func(ctx context.Context, tr Transcript) (*Client, error)
}

// Pool keeps reusable connections to one route. It is safe for
// concurrent use.
type Pool struct {
	opts   PoolOptions
	sem    chan struct{}
	mu     sync.Mutex
	idle   []*Client
	closed bool
	timer  *time.Timer
}

// NewPool returns a pool for the route in opts.
func NewPool(opts *PoolOptions) *Pool {
	o := *opts
	if o.MaxConns <= 0 {
		o.MaxConns = 4
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 30 * time.Second
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 5 * time.Minute
	}
	if o.MaxMessages <= 0 {
		o.MaxMessages = 1000
	}
	if o.ProbeAfter <= 0 {
		o.ProbeAfter = 2 * time.Second
	}
	return &Pool{opts: o, sem: make(chan struct{}, o.MaxConns)}
}

// Send sends one message over a pooled connection (dialled if none is
// idle), with the semantics of Client.Send. A connection that fails is
// closed, never reused. A dial failure is returned as err and given to
// every recipient.
//
// An idle connection the server has closed is not used: it is found at
// checkout without a round trip (a non-blocking peek at the idle
// socket: EOF or unasked-for bytes mean it is gone), or, when the
// server closes it just as the transaction starts, by the transaction
// failing before its first reply (RSET or MAIL: a write or read error,
// or a 421). Then the message is sent again, once, on a new connection,
// with no byte of the body lost, and the caller sees only the second
// outcome: no attempt is spent on a connection that was already gone.
func (p *Pool) Send(ctx context.Context, env *Envelope, body io.Reader, so *SendOptions) (*SendResult, error) {
	var tr Transcript
	if so != nil {
		tr = so.Transcript
	}
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return failedResult(env, &ConnError{Stage: "pool", Err: context.Cause(ctx)})
	}
	defer func() { <-p.sem }()
	c, reused, err := p.get(ctx, tr)
	if err != nil {
		return failedResult(env, err)
	}
	t := c.newTxn(env, so, false)
	t.prepare(body)
	err = t.exec(ctx)
	if reused && t.closedUnderUs(ctx, err) {
		c.SetTranscript(nil)
		c.Close()
		if tr != nil {
			tr(Note, "pooled connection was closed by the server before the first reply; sending on a new connection")
		}
		if c, err = p.dial(ctx, tr); err != nil {
			return failedResult(env, err)
		}
		t = t.again(c)
		err = t.exec(ctx)
	}
	c.SetTranscript(nil)
	p.put(c)
	return t.res, err
}

// closedUnderUs reports whether err is the server having closed the
// connection before the transaction got its first reply: a connection
// failure that is neither a timeout (a hung server is not retried at
// once) nor the caller's cancellation.
func (t *txn) closedUnderUs(ctx context.Context, err error) bool {
	if err == nil || !t.started || t.c.replies != t.firstReply || ctx.Err() != nil {
		return false
	}
	var ce *ConnError
	return errors.As(err, &ce) && !ce.Timeout()
}

// failedResult gives err to every recipient.
func failedResult(env *Envelope, err error) (*SendResult, error) {
	res := &SendResult{Recipients: make([]RecipientResult, len(env.Recipients))}
	for i, a := range env.Recipients {
		res.Recipients[i] = RecipientResult{Address: a, Err: err}
	}
	return res, err
}

// get returns a live idle connection (reused true) or dials a new one.
func (p *Pool) get(ctx context.Context, tr Transcript) (*Client, bool, error) {
	for {
		idle, err := p.popIdle()
		if err != nil {
			return nil, false, err
		}
		if idle == nil {
			break
		}
		if p.expired(idle, time.Now()) {
			idle.quitNoWait()
			continue
		}
		if idle.peerGone() {
			if tr != nil {
				tr(Note, "pooled connection was closed by the server while idle; not using it")
			}
			idle.Close()
			continue
		}
		idle.SetTranscript(tr)
		if time.Since(idle.lastUsed) > p.opts.ProbeAfter {
			if err := idle.Noop(ctx); err != nil {
				idle.Close()
				continue
			}
		}
		return idle, true, nil
	}
	c, err := p.dial(ctx, tr)
	return c, false, err
}

// dial makes a new connection for the pool's route.
func (p *Pool) dial(ctx context.Context, tr Transcript) (*Client, error) {
	if p.opts.Dial != nil {
		return p.opts.Dial(ctx, tr)
	}
	return dial(ctx, p.opts.Addr, p.opts.Options, tr)
}

func (p *Pool) popIdle() (*Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrPoolClosed
	}
	n := len(p.idle)
	if n == 0 {
		return nil, nil
	}
	c := p.idle[n-1]
	p.idle = p.idle[:n-1]
	return c, nil
}

// expired reports whether c must not be used again.
func (p *Pool) expired(c *Client, now time.Time) bool {
	return c.broken != nil || c.messages >= p.opts.MaxMessages ||
		now.Sub(c.created) > p.opts.MaxAge || now.Sub(c.lastUsed) > p.opts.IdleTimeout
}

// put returns c to the idle list, or closes it.
func (p *Pool) put(c *Client) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.expired(c, time.Now()) {
		c.quitNoWait()
		return
	}
	p.idle = append(p.idle, c)
	if p.timer == nil {
		p.timer = time.AfterFunc(p.opts.IdleTimeout, p.sweep)
	} else {
		p.timer.Reset(p.opts.IdleTimeout)
	}
}

// sweep closes connections idle too long.
func (p *Pool) sweep() {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	keep := p.idle[:0]
	for _, c := range p.idle {
		if p.expired(c, now) {
			c.quitNoWait()
			continue
		}
		keep = append(keep, c)
	}
	clear(p.idle[len(keep):])
	p.idle = keep
	if len(keep) > 0 && !p.closed {
		p.timer.Reset(p.opts.IdleTimeout)
	}
}

// Close closes the idle connections; connections in use are closed when
// their Send returns. Later Sends fail with ErrPoolClosed.
func (p *Pool) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	if p.timer != nil {
		p.timer.Stop()
	}
	for _, c := range p.idle {
		c.quitNoWait()
	}
	p.idle = nil
	return nil
}

// quitNoWait sends QUIT without waiting for the reply, then closes.
func (c *Client) quitNoWait() {
	if c.broken == nil {
		c.dc.timeout = time.Second
		c.writeLine("QUIT", "QUIT")
		c.w.Flush()
	}
	c.Close()
}
