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
	"syscall"
	"time"

	"github.com/outbox-mail/outbox/internal/crlf"
)

// Client is one SMTP session. It is not safe for concurrent use; a Pool
// shares Clients between goroutines.
type Client struct {
	opts       Options
	host       string // server name for TLS verification
	raw        net.Conn
	rc         syscall.RawConn // raw's socket, for the idle check; nil if none
	dc         *deadlineConn
	conn       net.Conn // dc, or a *tls.Conn over it
	r          *bufio.Reader
	w          *bufio.Writer
	ext        map[string]string // EHLO keywords (upper case) → parameters
	isTLS      bool
	verified   bool  // the TLS peer's certificate verified
	tlsFailed  bool  // the TLS handshake itself failed
	plainOnly  bool  // STARTTLS failed on an earlier connection: do not offer it again
	broken     error // set once the session cannot be used any more
	needReset  bool  // a transaction may be open: RSET before the next MAIL
	replies    int   // replies read so far; a transaction notes where it began
	extraTrace Transcript
	chunkBuf   []byte       // BDAT chunk buffer, reused between messages
	norm       *crlf.Reader // body normaliser, reused between messages
	peek       idlePeek

	created  time.Time
	lastUsed time.Time
	messages int
}

// Dial connects to addr ("host:port"), reads the greeting, says EHLO (HELO
// if EHLO is refused), applies the STARTTLS policy and authenticates when
// credentials are configured. ctx bounds the whole of it. When session
// setup fails after the greeting (AUTH refused, STARTTLS missing under a
// required policy, a local refusal), QUIT is sent before the connection
// is closed.
//
// With opportunistic STARTTLS (RFC 7435) a certificate that does not
// verify is no reason to refuse encryption: the session goes on
// encrypted and SendResult.TLSVerified says so. A TLS handshake that
// fails outright is retried once on a new connection in plain text.
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
	c, err := connect(ctx, addr, &o, tr, false)
	if err != nil && c != nil && c.tlsFailed && !o.ImplicitTLS && o.StartTLS == TLSOpportunistic && ctx.Err() == nil {
		c.trace(Note, "TLS handshake failed; connecting again without STARTTLS (opportunistic TLS)")
		c, err = connect(ctx, addr, &o, tr, true)
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// connect makes one connection and sets the session up. On failure it
// returns the closed Client too, so dial can see why.
func connect(ctx context.Context, addr string, o *Options, tr Transcript, plainOnly bool) (*Client, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, &ConnError{Stage: "dial", Err: err}
	}
	if o.ServerName != "" {
		host = o.ServerName
	}
	dctx, cancel := context.WithTimeout(ctx, o.Timeouts.Dial)
	raw, err := o.Dialer.DialContext(dctx, "tcp", addr)
	cancel()
	if err != nil {
		return nil, &ConnError{Stage: "dial", Err: err}
	}
	c := &Client{opts: *o, host: host, raw: raw, created: time.Now(), extraTrace: tr, plainOnly: plainOnly}
	if sc, ok := raw.(syscall.Conn); ok {
		c.rc, _ = sc.SyscallConn()
	}
	c.dc = &deadlineConn{Conn: raw, timeout: o.Timeouts.Dial}
	c.setConn(c.dc)
	defer c.dc.bind(ctx).stop()
	if err := c.handshake(ctx); err != nil {
		c.quitAfterFailure()
		c.Close()
		return c, c.ctxErr(ctx, err)
	}
	c.lastUsed = time.Now()
	return c, nil
}

// quitWait bounds the wait for the reply to a QUIT sent after a failed
// setup: the server deserves a QUIT, not a long wait.
const quitWait = 10 * time.Second

// quitAfterFailure says QUIT on a session whose setup failed, when the
// connection can still carry it (RFC 5321 §3.8: the client ends the
// session; it does not just hang up).
func (c *Client) quitAfterFailure() {
	if c.broken != nil {
		return
	}
	c.cmd("QUIT", min(c.opts.Timeouts.Command, quitWait), "QUIT")
}

// handshake runs everything between connecting and the first MAIL.
func (c *Client) handshake(ctx context.Context) error {
	if c.opts.ImplicitTLS {
		if err := c.tlsHandshake(false); err != nil {
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
	s := c.ext["SIZE"]
	if s == "" {
		return 0 // a bare SIZE: no limit given (and no ParseInt error to allocate)
	}
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// writeLine buffers one command line (CRLF added) and traces it.
func (c *Client) writeLine(line, shown string) error {
	c.trace(Sent, shown)
	c.w.WriteString(line)
	_, err := c.w.WriteString("\r\n")
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

// readReply reads one reply; any failure breaks the session. So does a
// 421, whatever the stage: the server is closing the channel (RFC 5321
// §3.8), so the reply comes back with a *ConnError wrapping it.
func (c *Client) readReply(stage string) (*Reply, error) {
	rep, err := readReply(c.r, c.opts.MaxLineLength, c.opts.MaxReplyLines,
		func(l string) { c.trace(Received, l) })
	if err != nil {
		return nil, c.fail(stage, err)
	}
	if rep.Code == 421 {
		return rep, c.fail(stage, replyError(stage, rep))
	}
	c.replies++
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
	if err == nil {
		return nil // before ce, whose address escapes: no allocation on success
	}
	var ce *ConnError
	if !errors.As(err, &ce) {
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
	defer c.dc.bind(ctx).stop()
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
