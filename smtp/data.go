package smtp

import "io"

// afterEnvelope reads the reply to DATA or to the first BDAT chunk and
// carries on with the body when the transaction can go on.
func (t *txn) afterEnvelope(last bool) error {
	c := t.c
	if t.chunking {
		timeout := c.opts.Timeouts.MailRcpt
		if last {
			timeout = c.opts.Timeouts.DataTerm
		}
		rep, err := c.readReplyTimeout("BDAT", timeout)
		if err != nil {
			return err
		}
		if err := t.envelopeErr(); err != nil {
			return err // the server consumed and rejected the chunk
		}
		if last {
			return t.final("BDAT LAST", rep)
		}
		if rep.Code/100 != 2 {
			e := replyError("BDAT", rep)
			t.applyAccepted(e)
			return e
		}
		return t.moreChunks()
	}
	rep, err := c.readReplyTimeout("DATA", c.opts.Timeouts.DataInit)
	if err != nil {
		return err
	}
	if err := t.envelopeErr(); err != nil {
		if rep.Code == 354 { // a server that accepts DATA with no recipient
			if err := t.terminateEmpty(); err != nil {
				return err
			}
		}
		return err
	}
	if rep.Code != 354 {
		e := replyError("DATA", rep)
		t.applyAccepted(e)
		return e
	}
	return t.streamData()
}

// envelopeErr is the error that ends the transaction before the body:
// MAIL rejected or every recipient rejected.
func (t *txn) envelopeErr() error {
	if t.mailErr != nil {
		return t.mailErr
	}
	if len(t.accepted) == 0 {
		return t.noRecipients()
	}
	return nil
}

// terminateEmpty ends a DATA that should not have been accepted.
func (t *txn) terminateEmpty() error {
	c := t.c
	c.writeLine(".", ".")
	if err := c.flush("DATA", c.opts.Timeouts.DataBlock); err != nil {
		return err
	}
	_, err := c.readReplyTimeout("DATA", c.opts.Timeouts.DataTerm)
	return err
}

// streamData sends the body after a 354, dot-stuffed, then the final dot.
func (t *txn) streamData() error {
	c := t.c
	c.dc.timeout = c.opts.Timeouts.DataBlock
	dw := &dotWriter{w: c.w, lineStart: true}
	src := &sourceReader{r: t.body}
	if _, err := io.Copy(dw, src); err != nil {
		if src.err != nil {
			return t.abortData(t.bodyErr(src.err))
		}
		return c.fail("DATA", err)
	}
	if err := dw.close(); err != nil {
		return c.fail("DATA", err)
	}
	t.res.BodySize = dw.n
	if c.tracing() {
		c.trace(Sent, bodySummary(dw.n))
	}
	c.trace(Sent, ".")
	if t.quit && t.pipelining {
		c.writeLine("QUIT", "QUIT")
		t.quitSent = true
	}
	if err := c.flush("DATA", c.opts.Timeouts.DataBlock); err != nil {
		return err
	}
	rep, err := c.readReplyTimeout("DATA", c.opts.Timeouts.DataTerm)
	if err != nil {
		return err
	}
	return t.final("DATA", rep)
}

// moreChunks streams the chunks after the first, keeping at most a few
// BDAT replies unread when pipelining.
func (t *txn) moreChunks() error {
	c := t.c
	outstanding := 0
	var failed error
	for {
		chunk, last, err := t.readChunk()
		if err != nil {
			return t.abortChunks(outstanding, t.bodyErr(err))
		}
		t.writeChunk(chunk, last)
		if err := c.flush("BDAT", c.opts.Timeouts.DataBlock); err != nil {
			return err
		}
		outstanding++
		for outstanding > 0 && (last || failed != nil || !t.pipelining || outstanding > maxOutstandingChunks) {
			isFinal := last && outstanding == 1
			timeout := c.opts.Timeouts.MailRcpt
			if isFinal {
				timeout = c.opts.Timeouts.DataTerm
			}
			rep, err := c.readReplyTimeout("BDAT", timeout)
			if err != nil {
				return err
			}
			outstanding--
			if isFinal && failed == nil {
				return t.final("BDAT LAST", rep)
			}
			if rep.Code/100 != 2 && failed == nil {
				failed = replyError("BDAT", rep)
			}
		}
		if failed != nil {
			t.applyAccepted(failed)
			return failed
		}
	}
}

// final applies the reply after the body to every accepted recipient.
func (t *txn) final(verb string, rep *Reply) error {
	t.res.Data = rep
	t.done = true
	if rep.Code/100 == 2 {
		t.c.needReset = false
		return nil
	}
	e := replyError(verb, rep)
	t.applyAccepted(e)
	return e
}
