package smtp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
)

// maxOutstandingChunks bounds BDAT replies left unread while streaming.
const maxOutstandingChunks = 4

// SendOptions are per-call options of Pool.Send.
type SendOptions struct {
	// Transcript, when set, sees this message's session: the dial and
	// handshake too when a new connection is made for it.
	Transcript Transcript
	// Downgrade converts an 8-bit MIME body (Envelope.EightBit) to 7-bit
	// MIME for a server that does not offer 8BITMIME; the reader it
	// returns is sent instead, without SIZE. It may read body lazily.
	// Without it such a send fails locally: 554 5.6.3, permanent. An
	// error from the reader it returns (other than one of body itself)
	// aborts the transaction and is returned as a local permanent 5.6.3
	// *Error: the connection stays usable where the protocol allows (RSET
	// after BDAT; after DATA only closing the connection aborts).
	Downgrade func(body io.Reader) (io.Reader, error)
}

// noSendOptions stands for nil *SendOptions; it is never written.
var noSendOptions SendOptions

// txn is the state of one mail transaction.
type txn struct {
	c          *Client
	env        *Envelope
	so         *SendOptions
	res        *SendResult
	body       io.Reader // normalised (CRLF) body, downgraded when needed
	prepErr    error     // the body cannot be sent on this connection
	downgraded bool
	pending    []byte // the first chunk, read but perhaps not acknowledged
	started    bool   // run began: something may have been written
	firstReply int    // c.replies when the transaction began
	pipelining bool
	chunking   bool
	quit       bool // end the session after the body
	quitSent   bool // QUIT was pipelined behind the body
	mailErr    error
	accepted   []int  // recipients accepted at RCPT
	firstRcpt  error  // first RCPT rejection
	refused    []bool // recipients refused locally (no RCPT sent)
	done       bool   // the final data reply was read
}

// Send runs one mail transaction: MAIL, RCPT for every recipient, then the
// body from body (line endings normalised to CRLF, streamed in constant
// memory). With PIPELINING the commands go in one write; with CHUNKING the
// body goes as BDAT, so a small message costs one round trip.
//
// The result is never nil and has one entry per recipient. err is nil when
// the server accepted the message for at least one recipient. Otherwise it
// is the MAIL or final-data *Error, a local *Error (Local set), an error
// matching ErrNoRecipients, an error reading body, or a *ConnError
// (errors.Is(err, ErrConnection)); after a *ConnError every recipient not
// acknowledged carries it as Err, and the Client is unusable.
func (c *Client) Send(ctx context.Context, env *Envelope, body io.Reader) (*SendResult, error) {
	t := c.newTxn(env, nil, false)
	t.prepare(body)
	err := t.exec(ctx)
	return t.res, err
}

// SendAndQuit is Send followed by QUIT and Close; with PIPELINING the QUIT
// travels in the same write as the end of the body. The QUIT reply does not
// change the result.
func (c *Client) SendAndQuit(ctx context.Context, env *Envelope, body io.Reader) (*SendResult, error) {
	t := c.newTxn(env, nil, true)
	t.prepare(body)
	err := t.exec(ctx)
	return t.res, err
}

// newTxn starts a transaction on c; the body is set by prepare or again.
func (c *Client) newTxn(env *Envelope, so *SendOptions, quit bool) *txn {
	if so == nil {
		so = &noSendOptions
	}
	res := &SendResult{Recipients: make([]RecipientResult, len(env.Recipients)),
		Server: c.host, RemoteAddr: c.raw.RemoteAddr(), TLS: c.isTLS, TLSVerified: c.isTLS && c.verified}
	for i, a := range env.Recipients {
		res.Recipients[i].Address = a
	}
	t := &txn{c: c, env: env, so: so, res: res, quit: quit}
	t.pipelining, _ = c.Extension("PIPELINING")
	t.pipelining = t.pipelining && !c.opts.DisablePipelining
	t.chunking, _ = c.Extension("CHUNKING")
	t.chunking = t.chunking && !c.opts.DisableChunking
	return t
}

// exec runs the transaction and settles every recipient.
func (t *txn) exec(ctx context.Context) error {
	c, env := t.c, t.env
	err := c.usable()
	if err == nil && len(env.Recipients) == 0 {
		err = errors.New("smtp: envelope has no recipients")
	}
	if err == nil {
		err = t.prepErr
	}
	if err == nil {
		err = c.checkSize(env)
	}
	if err == nil {
		err = t.checkRecipients()
	}
	if err == nil {
		b := c.dc.bind(ctx)
		t.started, t.firstReply = true, c.replies
		err = t.run()
		b.stop()
		c.messages++
		c.lastUsed = time.Now()
		err = c.ctxErr(ctx, err)
	}
	t.settle(err)
	if t.quit {
		t.finishQuit(ctx)
	}
	return err
}

// settle gives every undecided recipient the transaction's error (the
// MAIL rejection when there was one).
func (t *txn) settle(err error) {
	if err == nil || t.done {
		return
	}
	fill := err
	if t.mailErr != nil {
		fill = t.mailErr // MAIL was refused: that decides every recipient
	}
	for i := range t.res.Recipients {
		if t.res.Recipients[i].Err == nil {
			t.res.Recipients[i].Err = fill
		}
	}
}

// checkRecipients refuses locally, before anything is written, every
// recipient whose address could break out of RCPT TO:<…>; the others are
// sent as usual. When none is left the transaction is not started.
func (t *txn) checkRecipients() error {
	n := 0
	for i, a := range t.env.Recipients {
		if e := rcptError(a); e != nil {
			if t.refused == nil {
				t.refused = make([]bool, len(t.env.Recipients))
			}
			t.refused[i] = true
			t.res.Recipients[i].Err = e
			if t.firstRcpt == nil {
				t.firstRcpt = e
			}
			n++
		}
	}
	if n == len(t.env.Recipients) {
		return t.noRecipients()
	}
	return nil
}

// skip reports a recipient refused locally: no RCPT goes for it.
func (t *txn) skip(i int) bool { return t.refused != nil && t.refused[i] }

// finishQuit reads the pipelined QUIT reply (or sends QUIT) and closes.
func (t *txn) finishQuit(ctx context.Context) {
	c := t.c
	if c.broken == nil {
		b := c.dc.bind(ctx)
		if t.quitSent {
			c.readReplyTimeout("QUIT", c.opts.Timeouts.Command)
		} else {
			c.cmd("QUIT", c.opts.Timeouts.Command, "QUIT")
		}
		b.stop()
	}
	c.Close()
}

// checkSize refuses a message larger than the server's SIZE limit.
func (c *Client) checkSize(env *Envelope) error {
	if max := c.MaxMessageSize(); max > 0 && env.Size > max {
		return &Error{Command: "MAIL FROM:<" + env.From + ">", Code: 552, EnhancedCode: EnhancedCode{5, 3, 4},
			Message: fmt.Sprintf("message size %d exceeds the server's limit of %d", env.Size, max), Local: true}
	}
	return nil
}

// run performs the transaction and returns its overall error.
func (t *txn) run() error {
	c := t.c
	mail, err := c.mailCommand(t.env, t.downgraded)
	if err != nil {
		return err
	}
	var chunk []byte
	last := false
	if t.chunking {
		chunk, last, err = t.readChunk()
		if err != nil {
			return t.bodyErr(err) // nothing written yet: nothing to abort
		}
		t.pending = chunk
	}
	if t.pipelining {
		return t.runPipelined(mail, chunk, last)
	}
	return t.runSequential(mail, chunk, last)
}

// readChunk reads the next BDAT chunk into the client's chunk buffer.
func (t *txn) readChunk() ([]byte, bool, error) {
	c := t.c
	if len(c.chunkBuf) != c.opts.ChunkSize {
		c.chunkBuf = make([]byte, c.opts.ChunkSize)
	}
	n, err := io.ReadFull(t.body, c.chunkBuf)
	switch err {
	case nil:
		return c.chunkBuf[:n], false, nil
	case io.EOF, io.ErrUnexpectedEOF:
		return c.chunkBuf[:n], true, nil
	}
	return nil, false, err
}

// runPipelined writes [RSET] MAIL, RCPT... and DATA or the first BDAT
// chunk in one flight, then reads the replies in order.
func (t *txn) runPipelined(mail string, chunk []byte, last bool) error {
	c := t.c
	reset := c.needReset
	if reset {
		c.writeLine("RSET", "RSET")
	}
	c.writeLine(mail, mail)
	for i := range t.env.Recipients {
		if t.skip(i) {
			continue
		}
		l := c.rcptCommand(t.env, i)
		c.writeLine(l, l)
	}
	if t.chunking {
		t.writeChunk(chunk, last)
	} else {
		c.writeLine("DATA", "DATA")
	}
	if err := c.flush("MAIL", c.opts.Timeouts.MailRcpt); err != nil {
		return err
	}
	if reset {
		if err := t.expectRSET(); err != nil {
			return err
		}
	}
	c.needReset = true
	if err := t.readMailReply(mail); err != nil {
		return err
	}
	for i := range t.env.Recipients {
		if t.skip(i) {
			continue
		}
		if err := t.readRcptReply(i); err != nil {
			return err
		}
	}
	return t.afterEnvelope(last)
}

// runSequential sends one command at a time, stopping at the first failure
// that makes the rest pointless.
func (t *txn) runSequential(mail string, chunk []byte, last bool) error {
	c := t.c
	if c.needReset {
		c.writeLine("RSET", "RSET")
		if err := c.flush("RSET", c.opts.Timeouts.Command); err != nil {
			return err
		}
		if err := t.expectRSET(); err != nil {
			return err
		}
	}
	c.needReset = true
	c.writeLine(mail, mail)
	if err := c.flush("MAIL", c.opts.Timeouts.MailRcpt); err != nil {
		return err
	}
	if err := t.readMailReply(mail); err != nil {
		return err
	}
	if t.mailErr != nil {
		return t.mailErr
	}
	for i := range t.env.Recipients {
		if t.skip(i) {
			continue
		}
		l := c.rcptCommand(t.env, i)
		c.writeLine(l, l)
		if err := c.flush("RCPT", c.opts.Timeouts.MailRcpt); err != nil {
			return err
		}
		if err := t.readRcptReply(i); err != nil {
			return err
		}
	}
	if len(t.accepted) == 0 {
		return t.noRecipients()
	}
	if t.chunking {
		t.writeChunk(chunk, last)
	} else {
		c.writeLine("DATA", "DATA")
	}
	if err := c.flush("DATA", c.opts.Timeouts.DataBlock); err != nil {
		return err
	}
	return t.afterEnvelope(last)
}

func (t *txn) expectRSET() error {
	rep, err := t.c.readReplyTimeout("RSET", t.c.opts.Timeouts.Command)
	if err != nil {
		return err
	}
	if rep.Code/100 != 2 {
		return t.c.fail("RSET", replyError("RSET", rep))
	}
	return nil
}

// readMailReply records the MAIL reply; a 421 is recorded too, and
// comes back with the error that ends the session.
func (t *txn) readMailReply(mail string) error {
	rep, err := t.c.readReplyTimeout("MAIL", t.c.opts.Timeouts.MailRcpt)
	if rep == nil {
		return err
	}
	t.res.Mail = rep
	if rep.Code/100 != 2 {
		t.mailErr = replyError(mail, rep)
	}
	return err
}

func (t *txn) readRcptReply(i int) error {
	rep, err := t.c.readReplyTimeout("RCPT", t.c.opts.Timeouts.MailRcpt)
	if rep == nil {
		return err
	}
	rr := &t.res.Recipients[i]
	rr.Reply = rep
	if err != nil { // 421: this recipient has the reply, the rest the end of the session
		rr.Err = replyError("RCPT TO:<"+rr.Address+">", rep)
		return err
	}
	switch {
	case t.mailErr != nil:
		rr.Err = t.mailErr
	case rep.Code/100 != 2:
		rr.Err = replyError("RCPT TO:<"+rr.Address+">", rep)
		if t.firstRcpt == nil {
			t.firstRcpt = rr.Err
		}
	default:
		t.accepted = append(t.accepted, i)
	}
	return nil
}

func (t *txn) noRecipients() error {
	return fmt.Errorf("%w; first: %w", ErrNoRecipients, t.firstRcpt)
}

// applyAccepted gives err to every recipient accepted at RCPT.
func (t *txn) applyAccepted(err error) {
	for _, i := range t.accepted {
		t.res.Recipients[i].Err = err
	}
	t.done = true
}

// writeChunk buffers "BDAT n [LAST]" and the chunk, and QUIT after the
// last chunk of a one-shot pipelined send.
func (t *txn) writeChunk(chunk []byte, last bool) {
	c := t.c
	var buf [32]byte // the command line, built without allocating
	l := strconv.AppendInt(append(buf[:0], "BDAT "...), int64(len(chunk)), 10)
	if last {
		l = append(l, " LAST"...)
	}
	if c.tracing() {
		c.trace(Sent, string(l))
		c.trace(Sent, bodySummary(int64(len(chunk))))
	}
	c.w.Write(append(l, '\r', '\n'))
	c.w.Write(chunk)
	t.res.BodySize += int64(len(chunk))
	if last && t.quit && t.pipelining {
		c.writeLine("QUIT", "QUIT")
		t.quitSent = true
	}
}
