package smtp

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Client is one SMTP session. It is not safe for concurrent use; a Pool
// shares Clients between goroutines.
type Client struct {
	opts       Options
	host       string // server name for TLS verification
	raw        net.Conn
	dc         *deadlineConn
	conn       net.Conn // dc, or a *tls.Conn over it
	r          *bufio.Reader
	w          *bufio.Writer
	ext        map[string]string // EHLO keywords (upper case) → parameters
	isTLS      bool
	broken     error // set once the session cannot be used any more
	needReset  bool  // a transaction may be open: RSET before the next MAIL
	extraTrace Transcript
	chunkBuf   []byte // BDAT chunk buffer, reused between messages

	created  time.Time
	lastUsed time.Time
	messages int
}

// Dial connects to addr ("host:port"), reads the greeting, says EHLO (HELO
// if EHLO is refused), applies the STARTTLS policy and authenticates when
// credentials are configured. ctx bounds the whole of it.
func Dial(ctx context.Context, addr string, opts *Options) (*Client, error) {
	return dial(ctx, addr, opts, nil)
}

// DialTraced is Dial with a transcript hook installed from the first byte
// (beside Options.Transcript), so the caller sees the connect, greeting and
// handshake too; a Pool's Dial hook uses it for per-message transcripts.
func DialTraced(ctx context.Context, addr string, opts *Options, tr Transcript) (*Client, error) {
	return dial(ctx, addr, opts, tr)
}

// dial is Dial with an extra transcript hook installed from the start.
func dial(ctx context.Context, addr string, opts *Options, tr Transcript) (*Client, error) {
	o := opts.withDefaults()
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, &ConnError{Stage: "dial", Err: err}
	}
	dctx, cancel := context.WithTimeout(ctx, o.Timeouts.Dial)
	raw, err := o.Dialer.DialContext(dctx, "tcp", addr)
	cancel()
	if err != nil {
		return nil, &ConnError{Stage: "dial", Err: err}
	}
	c := &Client{opts: o, host: host, raw: raw, created: time.Now(), extraTrace: tr}
	c.dc = &deadlineConn{Conn: raw, timeout: o.Timeouts.Dial}
	c.setConn(c.dc)
	stop := c.dc.bind(ctx)
	defer stop()
	if err := c.handshake(ctx); err != nil {
		c.Close()
		return nil, c.ctxErr(ctx, err)
	}
	c.lastUsed = time.Now()
	return c, nil
}

// handshake runs everything between connecting and the first MAIL.
func (c *Client) handshake(ctx context.Context) error {
	if c.opts.ImplicitTLS {
		if err := c.tlsHandshake(); err != nil {
			return err
		}
	}
	c.dc.timeout = c.opts.Timeouts.Greeting
	rep, err := c.readReply("greeting")
	if err != nil {
		return err
	}
	if rep.Code != 220 {
		return replyError("greeting", rep)
	}
	if err := c.hello(); err != nil {
		return err
	}
	if err := c.maybeStartTLS(); err != nil {
		return err
	}
	if c.opts.hasCredentials() {
		return c.auth()
	}
	return nil
}

func (c *Client) setConn(conn net.Conn) {
	c.conn = conn
	c.r = bufio.NewReaderSize(conn, 4096)
	c.w = bufio.NewWriterSize(conn, c.opts.ChunkSize+16<<10)
}

func (c *Client) tlsConfig() *tls.Config {
	cfg := &tls.Config{}
	if c.opts.TLSConfig != nil {
		cfg = c.opts.TLSConfig.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = c.host
	}
	return cfg
}

func (c *Client) tlsHandshake() error {
	c.dc.timeout = c.opts.Timeouts.Dial
	tc := tls.Client(c.dc, c.tlsConfig())
	if err := tc.Handshake(); err != nil {
		return &ConnError{Stage: "TLS handshake", Err: err}
	}
	c.setConn(tc)
	c.isTLS = true
	return nil
}

// hello sends EHLO, falling back to HELO when EHLO is not recognised.
func (c *Client) hello() error {
	rep, err := c.cmd("EHLO", c.opts.Timeouts.Command, "EHLO "+c.opts.LocalName)
	if err != nil {
		return err
	}
	if rep.Code == 250 {
		c.ext = parseExtensions(rep)
		return nil
	}
	if rep.Code != 500 && rep.Code != 502 && rep.Code != 504 && rep.Code != 550 {
		return replyError("EHLO", rep)
	}
	rep, err = c.cmd("HELO", c.opts.Timeouts.Command, "HELO "+c.opts.LocalName)
	if err != nil {
		return err
	}
	if rep.Code != 250 {
		return replyError("HELO", rep)
	}
	c.ext = map[string]string{}
	return nil
}

// parseExtensions reads the EHLO keywords from every line but the first.
func parseExtensions(rep *Reply) map[string]string {
	ext := make(map[string]string, len(rep.Lines))
	for _, l := range rep.Lines[1:] {
		k, v, _ := strings.Cut(strings.TrimSpace(l), " ")
		if k != "" {
			ext[strings.ToUpper(k)] = strings.TrimSpace(v)
		}
	}
	return ext
}

// maybeStartTLS applies the STARTTLS policy.
func (c *Client) maybeStartTLS() error {
	if c.isTLS || c.opts.StartTLS == TLSOff {
		return nil
	}
	if _, ok := c.ext["STARTTLS"]; !ok {
		if c.opts.StartTLS == TLSRequired {
			// Temporary, like Postfix's "TLS is required, but was not offered".
			return &Error{Command: "STARTTLS", Code: 454, EnhancedCode: EnhancedCode{4, 7, 0},
				Message: "server does not offer STARTTLS and the policy requires it", Local: true}
		}
		return nil
	}
	rep, err := c.cmd("STARTTLS", c.opts.Timeouts.Command, "STARTTLS")
	if err != nil {
		return err
	}
	if rep.Code != 220 {
		if c.opts.StartTLS == TLSOpportunistic && rep.Code >= 400 && rep.Code < 500 {
			return nil
		}
		return replyError("STARTTLS", rep)
	}
	if err := c.tlsHandshake(); err != nil {
		return err
	}
	c.ext = nil // forget what was said in the clear
	return c.hello()
}

// Extension reports whether the server advertised the EHLO keyword name,
// and its parameters.
func (c *Client) Extension(name string) (bool, string) {
	v, ok := c.ext[strings.ToUpper(name)]
	return ok, v
}

// RemoteAddr returns the address of the server this session is connected to.
func (c *Client) RemoteAddr() net.Addr { return c.raw.RemoteAddr() }

// ServerName returns the host name the session was dialled for (the name
// TLS verifies), which may differ from RemoteAddr's IP.
func (c *Client) ServerName() string { return c.host }

// TLS reports whether the session is encrypted, and its state.
func (c *Client) TLS() (tls.ConnectionState, bool) {
	if tc, ok := c.conn.(*tls.Conn); ok {
		return tc.ConnectionState(), true
	}
	return tls.ConnectionState{}, false
}

// MaxMessageSize returns the SIZE limit advertised by the server, or 0.
func (c *Client) MaxMessageSize() int64 {
	n, _ := strconv.ParseInt(c.ext["SIZE"], 10, 64)
	return n
}

// writeLine buffers one command line (CRLF added) and traces it.
func (c *Client) writeLine(line, shown string) error {
	c.trace(Sent, shown)
	_, err := c.w.WriteString(line + "\r\n")
	return err
}

// flush sends what is buffered, with the given inactivity timeout.
func (c *Client) flush(stage string, timeout time.Duration) error {
	c.dc.timeout = timeout
	if err := c.w.Flush(); err != nil {
		return c.fail(stage, err)
	}
	return nil
}

// readReply reads one reply; any failure breaks the session.
func (c *Client) readReply(stage string) (*Reply, error) {
	rep, err := readReply(c.r, c.opts.MaxLineLength, c.opts.MaxReplyLines,
		func(l string) { c.trace(Received, l) })
	if err != nil {
		return nil, c.fail(stage, err)
	}
	return rep, nil
}

// readReplyTimeout reads one reply within timeout.
func (c *Client) readReplyTimeout(stage string, timeout time.Duration) (*Reply, error) {
	c.dc.timeout = timeout
	return c.readReply(stage)
}

// cmd sends one command and reads its reply. Only a connection-level
// failure is returned as error; negative replies are the caller's to judge.
func (c *Client) cmd(stage string, timeout time.Duration, line string) (*Reply, error) {
	if err := c.writeLine(line, line); err != nil {
		return nil, c.fail(stage, err)
	}
	if err := c.flush(stage, timeout); err != nil {
		return nil, err
	}
	return c.readReplyTimeout(stage, timeout)
}

// fail marks the session broken and wraps err as a *ConnError.
func (c *Client) fail(stage string, err error) error {
	var ce *ConnError
	if !errors.As(err, &ce) {
		ce = &ConnError{Stage: stage, Err: err}
	}
	if c.broken == nil {
		c.broken = ce
	}
	c.raw.Close()
	return ce
}

// ctxErr prefers the context's error as cause when ctx ended (or its
// deadline, which also bounds the connection's deadlines, has passed).
func (c *Client) ctxErr(ctx context.Context, err error) error {
	var ce *ConnError
	if err == nil || !errors.As(err, &ce) {
		return err
	}
	cause := context.Cause(ctx)
	if dl, ok := ctx.Deadline(); cause == nil && ok && !time.Now().Before(dl) {
		cause = context.DeadlineExceeded
	}
	if cause != nil && !errors.Is(ce.Err, cause) {
		ce.Err = fmt.Errorf("%w (%v)", cause, ce.Err)
	}
	return err
}

// usable returns an error when the session can no longer be used.
func (c *Client) usable() error {
	if c.broken != nil {
		return &ConnError{Stage: "reuse", Err: fmt.Errorf("%w: %v", ErrClientClosed, c.broken)}
	}
	return nil
}

// simple runs a command expecting a 2xx reply.
func (c *Client) simple(ctx context.Context, verb string) error {
	if err := c.usable(); err != nil {
		return err
	}
	stop := c.dc.bind(ctx)
	defer stop()
	rep, err := c.cmd(verb, c.opts.Timeouts.Command, verb)
	if err != nil {
		return c.ctxErr(ctx, err)
	}
	c.lastUsed = time.Now()
	if rep.Code/100 != 2 {
		return replyError(verb, rep)
	}
	return nil
}

// Noop sends NOOP: a cheap check that the session is alive.
func (c *Client) Noop(ctx context.Context) error { return c.simple(ctx, "NOOP") }

// Reset sends RSET, abandoning any transaction in progress.
func (c *Client) Reset(ctx context.Context) error {
	if err := c.simple(ctx, "RSET"); err != nil {
		return err
	}
	c.needReset = false
	return nil
}

// Quit sends QUIT and closes the connection.
func (c *Client) Quit(ctx context.Context) error {
	err := c.simple(ctx, "QUIT")
	c.Close()
	return err
}

// Close closes the connection without QUIT.
func (c *Client) Close() error {
	if c.broken == nil {
		c.broken = &ConnError{Stage: "close", Err: ErrClientClosed}
	}
	return c.raw.Close()
}
